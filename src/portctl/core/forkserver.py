"""Detached supervisors forked from one server: what a project start uses where the platform
forks (``platform.fork_server``; Linux). The server, ``python -m portctl.core.forkserver``,
imports the supervisor once; each ``launch`` then costs a fork instead of an interpreter and
its imports, and the supervisors share those pages copy-on-write. A forked supervisor is the
same as a daemon's (``daemon.serve``): its own process, session, pid file and lock, and the
same one-line answer, on a pipe of its own. Where the platform does not fork, or the server
cannot take a request, ``launch`` is ``daemon.launch``.

``start_early`` starts the server as soon as a command may start a project (the entry point
calls it, before it parses anything), by forking the command itself: no second interpreter
starts, and the server's imports overlap the command's own; an unused server ends with the
command (its channel closes). Light to import: it runs that early. (A server started later,
by a command running in-process, is ``python -m portctl.core.forkserver``: a process with
threads must not fork.)
"""
from __future__ import annotations

import sys

from ..platform.current import platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

    from ..platform.protocol import Forks
    from .daemon import Outcome
    from .runfiles import RunDir
    from .spec import ServerSpec

_early: Optional[Forks] = None  # started by start_early, taken by the first Supervisors


def start_early() -> None:
    """Start the server now, for the project start this command is likely to make: by
    forking this process, which must run no other thread yet (the entry point calls this
    first). The server then imports the supervisor while the command parses, and no second
    interpreter starts. The supervisors forked then carry this command's command line,
    which `stop` must recognise as portctl's (owners' check: an argument naming portctl); a
    command started under another name (a renamed launcher), or a program that calls the
    entry point while other threads of its own run, gets the exec'd server instead."""
    global _early
    if _early is None:
        threading = sys.modules.get("threading")  # not imported: no thread of Python's runs
        alone = threading is None or threading.active_count() == 1
        _early = _start(here=alone and any("portctl" in arg for arg in sys.orig_argv))


def _start(here: bool = False) -> Optional[Forks]:
    import os  # not pathlib: its import (~10 ms) would come before the server's start

    try:
        return platform.fork_server([sys.executable, "-m", "portctl.core.forkserver"], os.getcwd(),
                                    main if here else None)
    except OSError:  # no server: each supervisor is a daemon of its own
        return None


class Supervisors:
    """Launches detached supervisors in ``run_dir``, forked by one server while it lasts."""

    def __init__(self, run_dir: RunDir) -> None:
        global _early
        self.run_dir = run_dir
        self._server, _early = (_early or _start()), None

    def launch(self, spec: ServerSpec, force: bool) -> Outcome:
        """As ``daemon.launch``: return once the supervisor serves or has failed."""
        import json

        from . import daemon

        if self._server is None:
            return daemon.launch(spec, self.run_dir, force)
        request = {"spec": spec.to_dict(with_env=True), "run_dir": str(self.run_dir.path), "force": force}
        try:
            answer = self._server.request(json.dumps(request).encode())
        except OSError:  # the server is gone, or the request too large for it
            return daemon.launch(spec, self.run_dir, force)
        with answer:
            return daemon.read_outcome(answer, spec, self.run_dir, lambda: None)

    def close(self) -> None:
        """No more launches: the server exits; the supervisors it forked go on."""
        if self._server is not None:
            self._server.close()
            self._server = None


def _supervise(request: bytes) -> int:
    """A forked child's job: the supervisor of one request, in its run dir (as a daemon's
    is), answering on fd 1."""
    import json
    import os
    from pathlib import Path

    from .daemon import serve
    from .spec import ServerSpec

    data = json.loads(request)
    os.chdir(data["run_dir"])
    return serve(ServerSpec.from_dict(data["spec"]), Path(data["run_dir"]), bool(data["force"]))


def main() -> None:
    """``python -m portctl.core.forkserver``, its requests on stdin (``platform.serve_forks``).
    Everything a supervisor loads is imported before the first fork, once for all of them:
    with the supervisor come the modules it loads lazily on its way to serving."""
    import json  # noqa: F401

    from . import daemon, logs, spec, supervisor  # noqa: F401

    platform.serve_forks(_supervise)


if __name__ == "__main__":
    main()
