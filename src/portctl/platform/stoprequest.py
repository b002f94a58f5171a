"""Stop requests by file, where another console cannot send the supervisor a signal it can
catch (Windows: TerminateProcess would end it with no clean-up, and console events reach
only a console's own process group). ``stop`` writes ``.server_<port>.stop`` naming the
supervisor's pid and the instance token from its record; the supervisor, on each wake-up,
takes a request only if both match it. A request left by an earlier instance, or written
without reading the record, is removed unanswered."""
from __future__ import annotations

from ..base.atomic import write_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path


def request_file(run_dir: Path, port: int) -> Path:
    return run_dir / f".server_{port}.stop"


def write(run_dir: Path, port: int, pid: int, token: str) -> None:
    """Ask the supervisor ``pid`` of the instance with ``token`` to stop."""
    write_atomic(request_file(run_dir, port), f"{pid} {token}\n")


def take(run_dir: Path, port: int, pid: int, token: str) -> bool:
    """Whether a stop request for this supervisor (``pid``, ``token``) is waiting; any request
    found is consumed, a foreign or stale one without effect."""
    path = request_file(run_dir, port)
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    path.unlink(missing_ok=True)
    return bool(token) and text.split() == [str(pid), token]
