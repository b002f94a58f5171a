@echo off
rem Stop the backend gracefully with portctl (PORT, default 8000); extra arguments pass through.
rem Exits with portctl's exit code (0 also when nothing was running).
setlocal
if not defined PORT set PORT=8000
portctl stop --port %PORT% %*
exit /b %ERRORLEVEL%
