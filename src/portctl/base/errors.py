"""Errors raised by the library; each carries its exit code and a one-line hint.

The library raises them and never exits; each entry point (``face.entry.main``, ``face.cli``, and
``daemon``, which sends them to its parent through the handshake) turns them into an exit status.
"""
from __future__ import annotations


class PortctlError(Exception):
    """A failure the user can act on: ``message`` says what, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class BadInput(PortctlError, ValueError):
    """Invalid port, host or option value (click's convention). Also a ValueError, so a
    record holding a bad value reads as damaged, and callers may catch either."""

    exit_code = 2


class NotRunning(PortctlError):
    """The queried instance is not running (LSB status convention)."""

    exit_code = 3


class PortInUse(PortctlError):
    """Another process holds the port; ``holders`` lists what was found."""

    exit_code = 4

    def __init__(self, message: str, hint: str = "", holders: tuple[object, ...] = ()) -> None:
        super().__init__(message, hint)
        self.holders = holders


class PolicyRefused(PortctlError):
    """The production policy forbids signalling a process portctl did not start."""

    exit_code = 5


class AlreadyRunning(PortctlError):
    """The port's lock is held by a live portctl supervisor."""

    exit_code = 6


class NameTaken(PortctlError):
    """A live instance of the run dir already has this name."""

    exit_code = 6


class NotReady(PortctlError):
    """The child did not accept connections before the ready timeout."""

    exit_code = 7


class PermissionDenied(PortctlError):
    """The OS refused to let us signal a process."""

    exit_code = 8


class ChildExited(PortctlError):
    """A foreground child ended on its own; portctl exits with its code."""

    def __init__(self, message: str, hint: str = "", *, code: int) -> None:
        super().__init__(message, hint)
        self.exit_code = code
