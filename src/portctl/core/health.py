"""HTTP health probes. A probe runs in its own thread and reports through a callback,
so it never blocks the supervisor's loop."""
from __future__ import annotations

import http.client
import threading
import time
from typing import Callable, Optional
from urllib.parse import urlsplit

from ..base.frozen import Frozen
from .ports import connect_host


class HealthResult(Frozen):
    ok: bool
    latency_ms: float
    detail: str  # "200", or the error


def health_url(health: str, host: str, port: int) -> str:
    """``/health`` -> ``http://127.0.0.1:8001/health``; a full URL is kept, ``{port}`` substituted."""
    health = health.replace("{port}", str(port)).replace("{host}", host)
    if "://" in health:
        return health
    shown = connect_host(host)
    shown = f"[{shown}]" if ":" in shown else shown
    return f"http://{shown}:{port}/{health.lstrip('/')}"


def probe(url: str, timeout_s: float) -> HealthResult:
    """One GET: healthy on any 2xx within ``timeout_s``."""
    parts = urlsplit(url)
    conn_cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    began = time.monotonic()
    try:
        conn = conn_cls(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
        try:
            conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
            status = conn.getresponse().status
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        return HealthResult(False, _ms(began), type(exc).__name__ + (f": {exc}" if str(exc) else ""))
    return HealthResult(200 <= status < 300, _ms(began), str(status))


def _ms(began: float) -> float:
    return round((time.monotonic() - began) * 1000, 1)


class Prober:
    """Probes ``url`` every ``interval_s`` in a daemon thread until stopped; each result goes
    to ``report`` (which must only record, e.g. put on a queue)."""

    def __init__(self, url: str, interval_s: float, timeout_s: float,
                 report: Callable[[HealthResult], None]) -> None:
        self._url, self._interval_s, self._timeout_s = url, interval_s, timeout_s
        self._report = report
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="portctl-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval_s):
            result = probe(self._url, self._timeout_s)
            if not self._stopped.is_set():
                self._report(result)
