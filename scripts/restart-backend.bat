@echo off
rem Restart the backend with its recorded command (PORT, default 8000); e.g. --force also
rem frees the port from whatever holds it. Exits with portctl's exit code.
setlocal
if not defined PORT set PORT=8000
portctl restart --port %PORT% %*
exit /b %ERRORLEVEL%
