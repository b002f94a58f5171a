"""The defaults of an instance, in one place: the CLI's options, the library API, ServerSpec,
project files and the demo app all take them from here."""
from __future__ import annotations

PORT = 8000
HOST = "127.0.0.1"
GRACE_S = 5.0  # between the graceful stop signal and the kill
READY_TIMEOUT_S = 30.0
LOG_MAX_BYTES = 10 * 1024 * 1024  # the child's log, and the event log, rotate past this size
LOG_BACKUPS = 5
HEALTH_INTERVAL_S = 10.0  # between health probes once the child serves
HEALTH_TIMEOUT_S = 1.0  # one probe's limit
HEALTH_FAILURES = 3  # consecutive failed probes that make the child unhealthy
