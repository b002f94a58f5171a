"""POSIX (macOS, BSD) process and socket primitives; ``linux`` refines some of them.

The surface is ``protocol.Platform``, which ``windows`` implements too.
"""
from __future__ import annotations

import os
import signal

from .psutil_readers import children as children
from .psutil_readers import describe as describe
from .psutil_readers import identity as identity
from .psutil_readers import listeners as listeners

TYPE_CHECKING = False
if TYPE_CHECKING:  # subprocess and socket are imported where used: `who` and `status` need neither
    import subprocess
    from pathlib import Path
    from typing import Callable, Mapping, Optional, Sequence

    import psutil

NAME = "macos" if os.uname().sysname == "Darwin" else "posix"
STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Signals wake the supervisor loop by themselves here: no periodic wake-up is needed.
WAKE_INTERVAL_S: Optional[float] = None
_EXIT_POLL_S = 0.005  # wait_exits without an OS wait on other processes' exits: look this often

def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    capture: bool = False,
    preexec: Optional[Callable[[], None]] = None,
) -> subprocess.Popen[bytes]:
    """Start the child as the leader of a new session and process group; with ``capture``
    its stdout and stderr are one pipe (for the log, in the order written) and its stdin is
    /dev/null."""
    import subprocess

    stdin = subprocess.DEVNULL if capture else None
    pipe = subprocess.PIPE if capture else None
    return subprocess.Popen(list(argv), env=dict(env), cwd=cwd, start_new_session=True,
                            preexec_fn=preexec, stdin=stdin, stdout=pipe,
                            stderr=subprocess.STDOUT if capture else None)


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux only); elsewhere they go to init."""


def reap_adopted(exclude: int) -> None:
    """Collect exit statuses of adopted children other than ``exclude`` (our Popen child):
    each of our children that has exited."""
    reap(children(os.getpid()), exclude)


def reap(pids: list[int], exclude: int) -> None:
    """Collect the exit status of each of ``pids`` (our children) that has exited, but
    ``exclude``'s; Linux shares this, with its children read from /proc."""
    for pid in pids:
        if pid == exclude:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue


def graceful_group(leader: int, signame: str = "TERM") -> None:
    """Ask the child's whole process group to stop (SIG``signame``); gone already is fine."""
    try:
        os.killpg(leader, getattr(signal, f"SIG{signame}"))
    except ProcessLookupError:
        pass


def graceful_one(proc: psutil.Process, signame: str = "TERM") -> None:
    """Ask one process to stop; psutil re-checks its identity before sending."""
    proc.send_signal(getattr(signal, f"SIG{signame}"))


def request_stop(pid: int, run_dir: Path, port: int, token: str) -> None:
    """Ask a supervisor (already verified) to stop gracefully."""
    os.kill(pid, signal.SIGTERM)


def stop_requested(run_dir: Path, port: int, token: str) -> bool:
    """Signals carry stop requests here; there is no request file to look for."""
    return False


def is_privileged() -> bool:
    return os.geteuid() == 0


def can_bind(host: str, port: int) -> bool:
    """Whether a listener could bind (host, port) now (TIME_WAIT does not count as busy)."""
    import socket

    for family, _, _, _, addr in _addresses(host, port):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(addr)
            except OSError:
                return False
    return True


def _addresses(host: str, port: int) -> list[tuple]:  # type: ignore[type-arg]
    import socket

    from ..base.hostnames import lookup_name

    infos = socket.getaddrinfo(lookup_name(host), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return list({info[4]: info for info in infos}.values())


def outside_group(leader: int, procs: list[psutil.Process]) -> list[psutil.Process]:
    """Processes that left the leader's process group (setsid, setpgid): killpg misses them."""
    outside = []
    for proc in procs:
        try:
            if os.getpgid(proc.pid) != leader:
                outside.append(proc)
        except OSError:
            continue
    return outside


def spawn_detached(argv: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
    """A background supervisor: its own session, no terminal, stdin/stdout pipes for the handshake."""
    import subprocess

    return subprocess.Popen(list(argv), cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def try_lock(path: Path) -> Optional[int]:
    """Open ``path`` (creating it) and take its exclusive flock without blocking: the fd that
    holds the lock, or None when another process holds it. A lock taken on a file that is no
    longer at ``path`` (`clean` unlinks unheld lock files) is dropped and the path opened
    again, so two processes never hold locks on two different files of the same name.
    The file is opened as a run file: a symlink is never followed (nor created through), and
    one that is not ours, or that others may write, is refused (safefile.UnsafeFile)."""
    from ..base.safefile import open_file

    while True:
        fd = open_file(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _flock(fd):
                os.close(fd)
                return None
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def unlock(fd: int) -> None:
    """Release a lock from ``try_lock`` (closing the fd drops it)."""
    os.close(fd)


def lock_is_held(path: Path) -> bool:
    """Whether another process holds the lock on ``path``: take it for an instant (never
    creating the file), as filelock would."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return not _flock(fd)
    finally:
        os.close(fd)  # closing drops our probe's lock, if we got it


def _flock(fd: int) -> bool:
    """One non-blocking exclusive flock (the call filelock makes): False if held elsewhere."""
    import errno
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):  # EACCES: some file systems
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def lock_holders(path: Path) -> Optional[set[int]]:
    """Which processes hold the lock on ``path``; None: this system does not say."""
    return None


def holds_lock(pid: int, path: Path) -> bool:
    """Whether ``pid`` is seen holding the lock on ``path``: never here (no /proc to show it)."""
    return False


def block_until_unlocked(path: Path) -> bool:
    """Block until no process holds the lock on ``path``: wait in a shared flock (it conflicts
    with the holder's exclusive one, never with other waiters) and let go the instant it is
    granted. True once free (or when there is no such file); False if it cannot be waited on."""
    import fcntl

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)  # never a FIFO's open
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        return False
    finally:
        os.close(fd)  # drops our shared lock at once
    return True


def wait_exits(pids: Sequence[int], timeout_s: float) -> None:
    """Return when one of ``pids`` may have exited, or after ``timeout_s``; the caller looks
    again. Here that is a short sleep: macOS and the BSDs are not waited on (Linux is)."""
    import time

    time.sleep(max(0.0, min(timeout_s, _EXIT_POLL_S)))


def fork_server(argv: Sequence[str], cwd: str, main: Optional[Callable[[], None]] = None) -> None:
    """None: each supervisor runs its own interpreter here. On macOS a fork without exec is
    unsafe once system libraries have started threads; the BSDs are untried."""
    return None


def serve_forks(child: Callable[[bytes], int]) -> None:
    """The fork server's loop (``forking.serve``); Linux starts the server."""
    from .forking import serve

    serve(child)
