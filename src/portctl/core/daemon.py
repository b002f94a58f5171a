"""Detached mode. ``launch`` starts ``python -m portctl.core.daemon`` in the background (new session
on POSIX; detached, new process group on Windows), hands it the spec on stdin, and waits for
one JSON line on its stdout: ready (pids, URL, log) or failed (exit code, reason). The daemon
side runs the ordinary Supervisor with its output going to the instance's log."""
from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any, Callable, Optional, Sequence

from ..base import messages
from ..base.frozen import Frozen, fields
from ..base.errors import PortctlError, exit_code_of, message_of
from .ports import instance_url
from .runfiles import Record, RunDir
from ..base.safefile import UnsafeFile
from .spec import ServerSpec

HANDSHAKE_MARGIN_S = 15.0  # beyond ready timeout + grace: the daemon always answers first


class Outcome(Frozen):
    """What the daemon reported: ``code`` 0 means it serves."""

    code: int
    message: str = ""
    hint: str = ""
    url: str = ""
    pid: Optional[int] = None
    child_pid: Optional[int] = None
    log: Optional[str] = None
    warnings: Sequence[str] = ()
    name: str = ""  # the instance's name and port, as the supervisor settled them
    port: Optional[int] = None


def launch(spec: ServerSpec, run_dir: RunDir, force: bool) -> Outcome:
    """Start a detached supervisor for ``spec``; return once it serves or has failed."""
    from ..platform.current import platform

    argv = [sys.executable, "-m", "portctl.core.daemon", str(run_dir.path)] + (["--force"] if force else [])
    proc = platform.spawn_detached(argv, run_dir.path)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(spec.to_dict(with_env=True)).encode())
    proc.stdin.close()
    return read_outcome(proc.stdout, spec, run_dir, proc.poll)


def read_outcome(stdout: IO[bytes], spec: ServerSpec, run_dir: RunDir,
                 exit_code: Callable[[], Optional[int]]) -> Outcome:
    """The supervisor's one answer line on ``stdout`` (``exit_code``: the exit code of the
    process that did not answer, if it is known)."""
    answer: list[bytes] = []
    reader = threading.Thread(target=lambda: answer.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(spec.ready_timeout_s + spec.grace_s + HANDSHAKE_MARGIN_S)
    try:
        data = json.loads(answer[0]) if answer and answer[0] else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Outcome(1, *messages.daemon_silent(exit_code()), log=str(run_dir.log_file(spec.name)))
    return Outcome(**{k: v for k, v in data.items() if k in fields(Outcome)})


class _Handshake:
    """The daemon's side: one JSON line on the original stdout, then stdout goes to /dev/null."""

    def __init__(self) -> None:
        self._out = os.fdopen(os.dup(1), "w")
        self.sent = False
        self.warnings: list[str] = []
        _to_devnull(1, 2)

    def send(self, **data: Any) -> None:
        """Answer once. The command that waits may be gone (Ctrl+C, a closed terminal,
        `timeout`): a broken pipe only means nobody listens, never that the instance stops."""
        if self.sent:
            return
        self.sent = True
        try:
            self._out.write(json.dumps({**data, "warnings": self.warnings}) + "\n")
            self._out.close()
        except OSError:
            try:
                self._out.close()
            except OSError:
                pass

    def ready(self, record: Record) -> None:
        assert record.child is not None
        self.send(code=0, url=instance_url(record.spec.host, record.spec.port),
                  pid=record.supervisor.pid, child_pid=record.child.pid, log=record.log,
                  name=record.spec.name, port=record.spec.port)

    def note(self, line: str) -> None:
        if not self.sent:
            self.warnings.append(line)


def _ignore(line: str) -> None:
    """Progress lines: the parent prints its own; the log gets the lifecycle events."""


def _to_devnull(*fds: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m portctl.core.daemon RUN_DIR [--force]`` with the spec as JSON on stdin."""
    args = sys.argv[1:] if argv is None else argv
    spec = ServerSpec.from_dict(json.loads(sys.stdin.read()))
    _to_devnull(0)
    return serve(spec, Path(args[0]), force="--force" in args)


def serve(spec: ServerSpec, run_dir: Path, force: bool) -> int:
    """Supervise ``spec`` as this process's whole job, answering once on stdout (fd 1) when
    it serves or has failed; stdin is already /dev/null. The daemon's body, and that of a
    supervisor forked by ``forkserver``."""
    from .logs import route_library_log
    from .supervisor import Supervisor, run_as_process

    handshake = _Handshake()
    record_log = str(RunDir(run_dir).log_file(spec.name))
    route_library_log(lambda level, text: handshake.note(text))
    supervisor: Optional[Supervisor] = None
    try:
        supervisor = Supervisor(spec, RunDir(run_dir), force=force,
                                notify=_ignore, warn=handshake.note, on_ready=handshake.ready)
        code = run_as_process(supervisor, exiting=True)
    except PortctlError as exc:  # before launch (port in use, already running, a refused run file): no log of ours
        spawned = supervisor is not None and supervisor.spawned
        message, hint = message_of(exc)
        handshake.send(code=exit_code_of(exc), message=message, hint=hint,
                       log=record_log if spawned and not isinstance(exc, UnsafeFile) else None)
        return exit_code_of(exc)
    except BaseException as exc:  # the parent must hear something, whatever happened
        handshake.send(code=1, message=f"supervisor failed: {exc!r}", log=record_log)
        raise
    handshake.send(code=code or 1, message=messages.stopped_before_ready(), log=record_log)
    return code


if __name__ == "__main__":
    from ..base.exiting import leave  # the waiting `stop` finishes as this ends: no teardown

    leave(main())
