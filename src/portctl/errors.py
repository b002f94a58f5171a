"""Errors raised by the library; each carries its exit code and formats its own message and
one-line hint (the words come from ``messages``): ``raise PortInUse.held_by(port, holders)``.

``exit_code_of`` and ``message_of`` map any exception to what the user sees; every entry (the
click CLI, the fast path, the detached daemon's handshake) goes through them.
"""
from __future__ import annotations

from . import messages

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, Optional, Sequence, TypeVar

    E = TypeVar("E", bound="PortctlError")


class PortctlError(Exception):
    """A failure the user can act on: ``message`` says what, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    @classmethod
    def no_log(cls: type[E], what: str) -> E:
        return cls(*messages.no_log(what))

    @classmethod
    def tampered(cls, port: int, reason: str) -> PortctlError:
        return cls(*messages.tampered(port, reason))

    @classmethod
    def foreign_lock(cls, port: int, holders: Iterable[int]) -> PortctlError:
        return cls(*messages.foreign_lock(port, holders))

    @classmethod
    def stop_timeout(cls, port: int, waited_s: float) -> PortctlError:
        return cls(*messages.stop_timeout(port, waited_s))

    @classmethod
    def other_run_dir(cls, port: int, run_dir: str, other_port: int) -> PortctlError:
        return cls(*messages.other_run_dir(port, run_dir, other_port))

    @classmethod
    def survivors(cls, pids: Iterable[int]) -> PortctlError:
        return cls(*messages.survivors(pids))

    @classmethod
    def spawn_failed(cls, argv: Sequence[str], reason: str) -> PortctlError:
        return cls(*messages.spawn_failed(argv, reason))

    @classmethod
    def never_named(cls, name: str) -> PortctlError:
        return cls(*messages.never_named(name))

    @classmethod
    def nothing_recorded(cls, port: int) -> PortctlError:
        return cls(*messages.nothing_recorded(port))

    @classmethod
    def nothing_to_restart(cls, run_dir: object, saved: Sequence[int]) -> PortctlError:
        return cls(*messages.nothing_to_restart(run_dir, saved))

    @classmethod
    def cannot_restart(cls, path: str, reason: str, port: int) -> PortctlError:
        return cls(*messages.cannot_restart(path, reason, port))


class BadInput(PortctlError, ValueError):
    """Invalid port, host or option value (click's convention). Also a ValueError, so a
    record holding a bad value reads as damaged, and callers may catch either."""

    exit_code = 2

    @classmethod
    def for_port(cls, value: object) -> BadInput:
        return cls(*messages.bad_port(value))

    @classmethod
    def for_host(cls, host: str, reason: str) -> BadInput:
        return cls(*messages.bad_host(host, reason))

    @classmethod
    def no_sweep_patterns(cls, names: Sequence[str], file: str) -> BadInput:
        return cls(*messages.no_sweep_patterns(names, file))

    @classmethod
    def for_range(cls, text: str) -> BadInput:
        return cls(*messages.bad_range(text))

    @classmethod
    def for_name(cls: type[E], name: object) -> E:
        return cls(*messages.bad_name(name))

    @classmethod
    def run_dir_unusable(cls, path: object, why: str) -> BadInput:
        return cls(*messages.run_dir_unusable(path, why))

    @classmethod
    def several_instances(cls, verb: str, run_dir: object, rows: Sequence[Any]) -> BadInput:
        return cls(*messages.several_instances(verb, run_dir, rows))

    @classmethod
    def restart_needs_one(cls, why: str) -> BadInput:
        return cls(*messages.restart_needs_one(why))


class NotRunning(PortctlError):
    """The queried instance is not running (LSB status convention)."""

    exit_code = 3

    @classmethod
    def on_port(cls, port: int) -> NotRunning:
        return cls(*messages.not_running(port))

    @classmethod
    def named(cls, name: str) -> NotRunning:
        return cls(*messages.no_such_instance(name))


class PortInUse(PortctlError):
    """Another process holds the port; ``holders`` lists what was found."""

    exit_code = 4

    def __init__(self, message: str, hint: str = "", holders: tuple[object, ...] = ()) -> None:
        super().__init__(message, hint)
        self.holders = holders

    @classmethod
    def held_by(cls, port: int, holders: Sequence[Any], remedy: str, *, run_dir: str = "") -> PortInUse:
        """``remedy`` (``policy.remedy``): what the hint may offer; ``run_dir``: where the failed
        start recorded its spec (the hint retries it)."""
        return cls(*messages.port_in_use(port, holders, run_dir=run_dir, remedy=remedy), holders=tuple(holders))

    @classmethod
    def after_stop(cls, port: int, holders: Sequence[Any]) -> PortInUse:
        return cls(*messages.busy_after_stop(port, holders), holders=tuple(holders))

    @classmethod
    def still_busy(cls, port: int) -> PortInUse:
        return cls(*messages.still_busy(port))

    @classmethod
    def none_found(cls, tried: Sequence[int]) -> PortInUse:
        return cls(*messages.no_port_found(tried))


class PolicyRefused(PortctlError):
    """The production policy forbids signalling a process portctl did not start."""

    exit_code = 5

    @classmethod
    def for_pid(cls, port: int, pid: int) -> PolicyRefused:
        return cls(*messages.production_refused(port, pid))

    @classmethod
    def sweep(cls, pid: int, service: str) -> PolicyRefused:
        return cls(*messages.sweep_refused(pid, service))


class AlreadyRunning(PortctlError):
    """The port's lock is held by a live portctl supervisor."""

    exit_code = 6

    @classmethod
    def on_port(cls, port: int, pid: Optional[int], *, force: bool = False, run_dir: str = "") -> AlreadyRunning:
        return cls(*messages.already_running(port, pid, force=force, run_dir=run_dir))


class NameTaken(PortctlError):
    """A live instance of the run dir already has this name."""

    exit_code = 6

    @classmethod
    def by(cls, name: str, holder: Any) -> NameTaken:
        """``holder``: the live instance (a ``status.Status``) with that name, or None."""
        return cls(*messages.name_taken(name, holder))


class NotReady(PortctlError):
    """The child did not accept connections before the ready timeout."""

    exit_code = 7

    @classmethod
    def on_port(cls, port: int, host: str, timeout_s: float, listening: Sequence[int] = ()) -> NotReady:
        return cls(*messages.not_ready(port, host, timeout_s, listening))


class PermissionDenied(PortctlError):
    """The OS refused to let us signal a process."""

    exit_code = 8

    @classmethod
    def for_pid(cls, pid: int) -> PermissionDenied:
        return cls(*messages.permission_denied(pid))

    @classmethod
    def other_user(cls, pid: int, username: Optional[str]) -> PermissionDenied:
        return cls(*messages.other_user(pid, username))

    @classmethod
    def invisible_holder(cls, port: int) -> PermissionDenied:
        return cls(*messages.invisible_holder(port))


class ChildExited(PortctlError):
    """A foreground child ended on its own; portctl exits with its code."""

    def __init__(self, message: str, hint: str = "", *, code: int) -> None:
        super().__init__(message, hint)
        self.exit_code = code

    @classmethod
    def early(cls, code: int) -> ChildExited:
        """Before it accepted a connection: its own code, or 1 when it exited with 0."""
        if code == 0:
            return cls(*messages.exited_zero_early(), code=1)
        return cls(*messages.exited_early(code), code=code)


def exit_code_of(exc: BaseException) -> int:
    """The documented exit code of ``exc``: its own for a PortctlError, 1 for anything else
    (a bug of ours or an OS refusal)."""
    return exc.exit_code if isinstance(exc, PortctlError) else 1


def message_of(exc: BaseException) -> tuple[str, str]:
    """What the user reads about ``exc``: (message, hint)."""
    if isinstance(exc, PortctlError):
        return exc.message, exc.hint
    return messages.internal_error(exc)
