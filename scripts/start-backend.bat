@echo off
rem Start the backend in the background with portctl; extra arguments pass through,
rem e.g.  start-backend.bat -- uvicorn app.main:app --port {port}
rem Set PORT to change the port (default 8000). Exits with portctl's exit code.
setlocal
if not defined PORT set PORT=8000
portctl start -d --port %PORT% %*
exit /b %ERRORLEVEL%
