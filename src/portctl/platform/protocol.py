"""The platform surface as a type: ``posix``, ``linux`` and ``windows`` each satisfy
``Platform``, and ``current.platform`` is the one chosen. For type checkers only: portctl
imports this module under ``TYPE_CHECKING`` (it loads ``typing``, which the fast paths avoid).
mypy verifies each platform module against it (``--platform linux``, ``darwin``, ``win32``)."""
from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Mapping, Optional, Protocol, Sequence

if TYPE_CHECKING:  # annotations only: Listener exists for type checkers alone
    import subprocess
    from pathlib import Path

    import psutil

    from .records import Listener, ProcessInfo


class Forks(Protocol):
    """A server that forks detached supervisors without exec (``platform.forking``)."""

    def request(self, data: bytes) -> BinaryIO:
        """Hand it one request; the pipe the forked supervisor answers on."""

    def close(self) -> None:
        """No more requests: the server exits (what it forked goes on)."""


class Platform(Protocol):
    """Process, signal, socket and lock primitives of one operating system."""

    NAME: str  # "linux", "macos", "posix" or "windows": picks the wording of some hints
    STOP_SIGNALS: tuple[int, ...]  # the signals the supervisor takes as "stop"
    WAKE_INTERVAL_S: Optional[float]  # how often a waiting supervisor wakes up; None: never

    def spawn(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path,
              capture: bool = False) -> subprocess.Popen[bytes]:
        """Start the supervised child in its own process group (with ``capture``, stdout
        and stderr share one pipe: ``stdout``)."""

    def spawn_detached(self, argv: Sequence[str], cwd: Path) -> subprocess.Popen[bytes]:
        """Start a background supervisor, detached from our terminal."""

    def fork_server(self, argv: Sequence[str], cwd: str,
                    main: Optional[Callable[[], None]] = None) -> Optional[Forks]:
        """Start a server (``argv`` runs ``serve_forks``) that forks one detached supervisor
        per request; None where supervisors are not forked (each execs its interpreter).
        With ``main``, this process (single-threaded, early in its life) forks to be the
        server, which runs ``main`` instead of exec'ing ``argv``."""

    def serve_forks(self, child: Callable[[bytes], int]) -> None:
        """The fork server's loop: fork a child running ``child(request)`` per request."""

    def become_subreaper(self) -> None:
        """Have orphaned descendants re-parent to us, where the system can."""

    def reap_adopted(self, exclude: int) -> None:
        """Collect exited children other than ``exclude``."""

    def wait_exits(self, pids: Sequence[int], timeout_s: float) -> None:
        """Return once any of ``pids`` has exited, or after ``timeout_s``."""

    def holds_lock(self, pid: int, path: Path) -> bool:
        """Whether the system cheaply shows ``pid`` holding the lock on ``path`` (True is
        exact; False: not shown, ask ``lock_holders``)."""

    def block_until_unlocked(self, path: Path) -> bool:
        """Block until the lock on ``path`` is free for an instant; False where the system
        cannot wait on it (the caller then looks again)."""

    def children(self, pid: int) -> list[int]:
        """Direct children of ``pid``."""

    def describe(self, pid: int) -> Optional[ProcessInfo]:
        """What `who` shows of ``pid``; None when it is gone."""

    def identity(self, pid: int) -> Optional[tuple[float, tuple[str, ...]]]:
        """(creation time, command line) of ``pid`` while it lives; None when it is gone or
        a zombie."""

    def listeners(self, port: int, among: Optional[Iterable[int]] = None) -> list[Listener]:
        """Every TCP listener on ``port``, any address, with every process holding it; with
        ``among``, holders are looked up among those pids only (``()``: none)."""

    def can_bind(self, host: str, port: int) -> bool:
        """Whether a listener could bind (host, port) now."""

    def graceful_group(self, leader: int, signame: str = "TERM") -> None:
        """Ask the process group led by ``leader`` to stop (with SIG``signame`` where signals are)."""

    def graceful_one(self, proc: psutil.Process, signame: str = "TERM") -> None:
        """Ask one process to stop (with SIG``signame`` where signals are)."""

    def outside_group(self, leader: int, procs: list[psutil.Process]) -> list[psutil.Process]:
        """The ``procs`` a signal to ``leader``'s group would miss."""

    def request_stop(self, pid: int, run_dir: Path, port: int, token: str) -> None:
        """Ask the supervisor ``pid`` of the instance with ``token`` to stop."""

    def stop_requested(self, run_dir: Path, port: int, token: str) -> bool:
        """Whether a stop request for this supervisor came by other means than a signal."""

    def is_privileged(self) -> bool:
        """Whether we run as root or administrator."""

    def try_lock(self, path: Path) -> Optional[int]:
        """Take the lock on ``path`` without blocking: the fd holding it, or None if held."""

    def unlock(self, fd: int) -> None:
        """Release a lock from ``try_lock``."""

    def lock_is_held(self, path: Path) -> bool:
        """Whether another process holds the lock on ``path``."""

    def lock_holders(self, path: Path) -> Optional[set[int]]:
        """Which processes hold the lock on ``path``; None when the system does not say."""
