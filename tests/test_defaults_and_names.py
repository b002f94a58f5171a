"""Issue 10 item 6: one home for the defaults (``portctl.base.defaults``), read by the CLI, the
library API, ServerSpec and project files; the general poller is ``poll.until``."""
from __future__ import annotations

import inspect
import time
from pathlib import Path

import click
import pytest

from portctl.base import defaults, poll
from portctl.face import api
from portctl.face.cli import cli
from portctl.project.model import Service
from portctl.core.spec import ServerSpec


def test_a_spec_takes_its_defaults_from_the_one_module() -> None:
    spec = ServerSpec(command=("x",))
    assert (spec.port, spec.host, spec.grace_s, spec.ready_timeout_s, spec.log_max_bytes, spec.log_backups) == \
        (defaults.PORT, defaults.HOST, defaults.GRACE_S, defaults.READY_TIMEOUT_S, defaults.LOG_MAX_BYTES,
         defaults.LOG_BACKUPS)


def _option_defaults(command: str) -> dict[str, object]:
    found = cli.commands[command]
    return {p.name: p.default for p in found.params if isinstance(p, click.Option) and p.name}


def test_the_cli_shows_the_same_defaults() -> None:
    start = _option_defaults("start")
    assert (start["port"], start["host"], start["grace"], start["ready_timeout"], start["log_max_bytes"],
            start["log_backups"]) == (defaults.PORT, defaults.HOST, defaults.GRACE_S, defaults.READY_TIMEOUT_S,
                                      defaults.LOG_MAX_BYTES, defaults.LOG_BACKUPS)
    assert (_option_defaults("free")["grace"], _option_defaults("free")["host"]) == (defaults.GRACE_S, defaults.HOST)


@pytest.mark.parametrize("function", [api.free_port, api.ensure_port_available])
def test_the_library_api_uses_the_same_defaults(function: object) -> None:
    params = inspect.signature(function).parameters  # type: ignore[arg-type]
    assert (params["grace_s"].default, params["host"].default) == (defaults.GRACE_S, defaults.HOST)


def test_a_project_service_uses_the_same_defaults() -> None:
    service = Service(name="api", command=("x",), cwd=Path("."))
    assert (service.host, service.grace_s, service.ready_timeout_s, service.log_max_bytes, service.log_backups) == \
        (defaults.HOST, defaults.GRACE_S, defaults.READY_TIMEOUT_S, defaults.LOG_MAX_BYTES, defaults.LOG_BACKUPS)


def test_poll_until_answers_as_soon_as_the_predicate_holds() -> None:
    calls = iter([False, False, True])
    assert poll.until(lambda: next(calls), time.monotonic() + 5)


def test_poll_until_gives_up_at_the_deadline_or_on_abort() -> None:
    began = time.monotonic()
    assert not poll.until(lambda: False, began + 0.05)
    assert 0.05 <= time.monotonic() - began < 2
    assert not poll.until(lambda: False, time.monotonic() + 60, abort=lambda: True)
