"""Supervisors forked without exec (Linux): one server process imports the supervisor once and
forks a detached supervisor per request, so each starts at once, and they share the
interpreter's pages copy-on-write instead of importing it again each.

The client and the server talk over a SOCK_SEQPACKET socket pair, the server's stdin: one
record per request, its bytes with the write end of a fresh pipe passed along (SCM_RIGHTS).
The forked supervisor answers on that pipe alone, as a daemon answers on its stdout, so no
two answers share a channel. The server ends when the client closes its end; what it forked
goes on (each one the leader of its own session).

Fork safety, the rules this module keeps:
- The server forks only while it is single-threaded (checked before each fork): a lock held
  by another thread at the fork (the import lock, a logging handler's, an allocator's) would
  stay held for ever in the child. The server starts no thread; the supervisor starts its own
  threads only after the fork.
- The child keeps no descriptor of the server's but the ones it needs: fd 0 and 2 are
  /dev/null, fd 1 is its own answer pipe, the request socket is closed, and every other
  request's pipe was closed in the server before this fork (each is closed right after its
  own fork). The server holds no lock file: each supervisor takes its own after the fork.
- What Python keeps per process is renewed by Python itself in the child: the ``random``
  module reseeds (``os.register_at_fork``), logging re-creates its handlers' locks, thread
  identities restart. The supervisor's token comes from ``os.urandom`` (the kernel's).
- ``gc.freeze()`` before the first fork keeps the collector off the server's objects, so
  collecting in a child does not copy the pages they sit on.
- The child leaves with ``os._exit``: never back into the server's loop, and no atexit
  handler or buffer of the server runs twice.
"""
from __future__ import annotations

import os
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import BinaryIO, Callable, NoReturn, Optional, Sequence, Union

MAX_REQUEST = 1 << 20  # bytes: a request is one spec as JSON, its environment included


class ForkServer:
    """The client's side: ``request`` hands the server one request and returns the pipe the
    forked supervisor answers on; ``close`` lets the server end."""

    def __init__(self, process: Union[subprocess.Popen[bytes], Forked], channel: socket.socket) -> None:
        import threading

        self.process, self._channel = process, channel
        self._lock = threading.Lock()  # one sender at a time (the project starts on threads)

    def request(self, data: bytes) -> BinaryIO:
        """Send ``data``; the read end of the answer pipe. OSError when the server is gone or
        the request too large: the caller then starts that supervisor another way."""
        if len(data) > MAX_REQUEST:
            raise OSError(f"request of {len(data)} bytes: more than {MAX_REQUEST}")
        read, write = os.pipe()
        try:
            with self._lock:
                socket.send_fds(self._channel, [data], [write])
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)  # the copy in flight keeps the pipe open; the child's end is the last
        return os.fdopen(read, "rb")

    def close(self, wait_s: float = 5.0) -> None:
        """No more requests: the server sees the end of its channel and exits (at once: it
        never waits for what it forked)."""
        import subprocess

        self._channel.close()
        try:
            self.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Forked:
    """The server forked from this process: as much of a Popen as ``ForkServer`` uses.
    ``wait_exits`` is the platform's (Linux: woken by a pidfd, not polling)."""

    def __init__(self, pid: int, wait_exits: Callable[[Sequence[int], float], None]) -> None:
        self.pid, self._wait_exits = pid, wait_exits

    def wait(self, timeout: Optional[float] = None) -> None:
        """Return once it has exited and is reaped (subprocess.TimeoutExpired after ``timeout``)."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while not os.waitpid(self.pid, os.WNOHANG)[0]:
            left = 3600.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                import subprocess

                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            self._wait_exits([self.pid], left)

    def kill(self) -> None:
        os.kill(self.pid, 9)


def start_server(argv: Sequence[str], cwd: str, main: Optional[Callable[[], None]],
                 wait_exits: Callable[[Sequence[int], float], None]) -> ForkServer:
    """Start the server (``argv``: a Python running ``serve``) in its own session, with no
    terminal: its stdin is the request channel, its stdout and stderr /dev/null. With
    ``main``, the server is this process forked, running ``main`` (which calls ``serve``):
    no interpreter to start, and what this process imported is shared. Only a process that
    runs no other thread may ask for that: the entry point, before anything else.
    ``wait_exits`` waits for the forked server's exit (``Forked``)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if main is not None:
        pid = os.fork()
        if pid == 0:
            ours.close()
            _become_server(theirs.detach(), cwd, main)
        theirs.close()
        return ForkServer(Forked(pid, wait_exits), ours)
    import subprocess  # not before a fork: the command may never need it

    try:
        process = subprocess.Popen(list(argv), cwd=cwd, stdin=theirs.fileno(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    return ForkServer(process, ours)


def serve(child: Callable[[bytes], int]) -> None:
    """The server's loop, on the channel that is fd 0: for each request, fork a child that
    runs ``child(request)`` with its answer pipe as fd 1 and exits with its return value.
    Returns when the client closes the channel."""
    import gc

    channel = socket.socket(fileno=os.dup(0))
    _to_devnull(0, 1, 2)
    gc.freeze()
    try:
        while True:
            data, fds, flags, _ = socket.recv_fds(channel, MAX_REQUEST, 1)
            _reap()
            if not data and not fds:
                return  # the client closed the channel
            if len(fds) == 1 and data and not flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                fork(channel, data, fds[0], child)
            for fd in fds:  # the child has its copy: none may reach the next child
                os.close(fd)
    finally:
        channel.close()


def fork(channel: socket.socket, data: bytes, answer: int, child: Callable[[bytes], int]) -> int:
    """Fork one child for ``data`` (see ``serve``); its pid, in the server. RuntimeError,
    before any fork, if this process runs more than one thread."""
    import threading

    if threading.active_count() != 1:
        raise RuntimeError(f"refusing to fork with {threading.active_count()} threads running")
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        os.setsid()  # its own session: no terminal, no signal meant for a sibling
        channel.close()
        os.dup2(answer, 1)
        os.close(answer)
        code = child(data)
    finally:
        os._exit(code)


def _become_server(channel: int, cwd: str, main: Callable[[], None]) -> NoReturn:
    """In the forked server: as ``start_server``'s exec'd one starts (its own session, the
    channel as stdin, stdout and stderr /dev/null, no other descriptor of the command's),
    then ``main``; it leaves by ``os._exit``, never back into the command's code."""
    code = 1
    try:
        os.setsid()
        os.chdir(cwd)
        os.dup2(channel, 0)
        _to_devnull(1, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the channel's other fd among them
        main()
        code = 0
    finally:
        os._exit(code)


def _reap() -> None:
    """Collect the children that already exited (a supervisor that failed to start)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _to_devnull(*fds: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)
