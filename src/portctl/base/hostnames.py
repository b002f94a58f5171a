"""Host names as the resolver takes them. ``socket.getaddrinfo`` runs every str through the
idna codec, whose first import costs ~2-4 ms; an ASCII name passed as bytes skips it. A
supervisor resolves its host before each start and restart, and a fork server would
otherwise import the codec for every forked supervisor's sake."""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union


def lookup_name(host: str) -> Union[str, bytes]:
    """``host`` for getaddrinfo: ASCII as bytes (the codec would give the same bytes, or
    refuse a label over 63 characters, which the resolver refuses too); anything else as is."""
    return host.encode("ascii") if host.isascii() else host
