@echo off
rem portctl wrapper for one service of the project (written by `portctl wrappers`).
rem Its file name says what it does, for the service NAME:
rem   start-NAME.bat     portctl start -d NAME         in the background; returns once it serves
rem   stop-NAME.bat      portctl stop NAME
rem   restart-NAME.bat   portctl restart NAME --force  also frees the port from whatever holds it
rem   status-NAME.bat    portctl status NAME
rem   logs-NAME.bat      portctl logs NAME
rem Copy or rename it for another service. Its arguments pass through to portctl. It runs from
rem the project root and exits with portctl's exit code (6: already running). Opened by a
rem double-click, it waits for a key when portctl fails, so the window stays open to read why
rem (set PORTCTL_NO_PAUSE=1 to never wait). Set PORTCTL to run another portctl (py -m portctl).
setlocal
cd /d "%~dp0@UP@"
if not defined PORTCTL set "PORTCTL=portctl"
for /f "tokens=1,* delims=-" %%a in ("%~n0") do (
    set "PORTCTL_VERB=%%a"
    set "PORTCTL_SERVICE=%%b"
)
set "PORTCTL_COMMAND="
if not defined PORTCTL_SERVICE goto :bad_name
if /i "%PORTCTL_VERB%"=="start" set "PORTCTL_COMMAND=start -d %PORTCTL_SERVICE%"
if /i "%PORTCTL_VERB%"=="stop" set "PORTCTL_COMMAND=stop %PORTCTL_SERVICE%"
if /i "%PORTCTL_VERB%"=="restart" set "PORTCTL_COMMAND=restart %PORTCTL_SERVICE% --force"
if /i "%PORTCTL_VERB%"=="status" set "PORTCTL_COMMAND=status %PORTCTL_SERVICE%"
if /i "%PORTCTL_VERB%"=="logs" set "PORTCTL_COMMAND=logs %PORTCTL_SERVICE%"
if not defined PORTCTL_COMMAND goto :bad_name
%PORTCTL% %PORTCTL_COMMAND% %*
set "PORTCTL_CODE=%ERRORLEVEL%"
goto :done
:bad_name
echo %~nx0: name it start-NAME.bat, stop-NAME.bat, restart-NAME.bat, status-NAME.bat or logs-NAME.bat 1>&2
set "PORTCTL_CODE=2"
:done
if not "%PORTCTL_CODE%"=="0" call :pause_if_double_clicked
exit /b %PORTCTL_CODE%

rem A double-click runs `cmd.exe /c ""...\NAME.bat" "`; a console's cmd.exe has no /c.
:pause_if_double_clicked
if defined PORTCTL_NO_PAUSE exit /b 0
setlocal EnableDelayedExpansion
if /i "!CMDCMDLINE:/c =!" neq "!CMDCMDLINE!" pause
endlocal
exit /b 0
