"""Bad input (issue 9 §2): one clear line, exit 2, no traceback, no hang, nothing created."""
from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

import portctl
from portctl.core import logs
from portctl.core.backoff import BackoffPolicy
from portctl.core.spec import ServerSpec
from support.apps import app
from support.portctl import Portctl
from support.ports import unused_port
from support.users import needs_nobody, portctl_as_nobody

pytestmark = pytest.mark.timeout(60)



def one_clean_error(result) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip()


# ----------------------------------------------------------------------------- timings

TIMING_OPTIONS = ["--grace", "--ready-timeout", "--health-interval", "--health-timeout",
                  "--backoff-initial", "--backoff-max", "--backoff-reset", "--restart-window"]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
@pytest.mark.parametrize("option", TIMING_OPTIONS)
def test_start_refuses_non_finite_timings(portctl: Portctl, option: str, value: str) -> None:
    result = portctl.run("start", "-d", option, value, "--", *app("listener", "{port}"))
    assert result.returncode == 2, (result.stdout, result.stderr)
    one_clean_error(result)
    assert option in result.stderr
    assert list(portctl.run_dir.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["start", "--health-interval", "0"],
    ["start", "--health-interval", "0.05"],
    ["start", "--ready-timeout", "0"],
    ["start", "--health-timeout", "0"],
    ["start", "--restart-window", "0"],
    ["stop", "--grace", "nan"],
    ["free", "1", "--grace", "inf"],
], ids=lambda a: " ".join(a))
def test_documented_lower_bounds_and_finite_grace_elsewhere(portctl: Portctl, args: list[str]) -> None:
    result = portctl.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    one_clean_error(result)


def test_the_bounds_themselves_are_accepted() -> None:
    from portctl.face.cli import Seconds

    assert Seconds("health_interval_s").convert("0.1", None, None) == 0.1
    assert Seconds("grace_s").convert("0", None, None) == 0.0
    assert Seconds("ready_timeout_s").convert("86400", None, None) == 86400.0
    spec = ServerSpec(command=("x",), grace_s=0, health_interval_s=0.1, ready_timeout_s=0.001)
    assert (spec.grace_s, spec.health_interval_s) == (0, 0.1)


@pytest.mark.parametrize("field, value", [
    ("grace_s", float("nan")), ("grace_s", float("inf")), ("grace_s", -1.0),
    ("ready_timeout_s", 0.0), ("ready_timeout_s", float("nan")),
    ("health_interval_s", 0.0), ("health_interval_s", 0.09), ("health_timeout_s", 0.0),
])
def test_server_spec_validates_its_timings(field: str, value: float) -> None:
    with pytest.raises(portctl.BadInput) as bad:
        ServerSpec(command=("x",), **{field: value})
    assert bad.value.exit_code == 2 and field in bad.value.message


def test_server_spec_validates_the_backoff_timings() -> None:
    with pytest.raises(portctl.BadInput):
        ServerSpec(command=("x",), backoff=BackoffPolicy(initial_s=float("nan")))
    with pytest.raises(ValueError):  # BadInput is a ValueError: a record holding one reads as damaged
        ServerSpec.from_dict({"port": 8000, "command": ["x"], "grace_s": float("inf")})


# ----------------------------------------------------------------------------- the fast path

@pytest.mark.parametrize("args", [["who", "²"], ["stop", "--port", "²"], ["status", "--port", "٣"],
                                  ["who", "¹²³"]], ids=lambda a: " ".join(a))
def test_unicode_digits_are_a_usage_error_not_a_traceback(portctl: Portctl, args: list[str]) -> None:
    result = portctl.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    one_clean_error(result)


# ----------------------------------------------------------------------------- unusable run dirs

@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="portctl-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir():
                sub.chmod(0o755)
        shutil.rmtree(path)


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_start_in_a_missing_or_file_run_dir_is_exit_2(portctl: Portctl, kind: str, tmp_path: Path) -> None:
    target = tmp_path / "nowhere"
    if kind == "file":
        target.write_text("")
    runner = Portctl(target, portctl._spawn)
    for args in (["start", "--", *app("listener", "{port}")], ["start", "-d", "--", *app("listener", "{port}")]):
        result = runner.run(*args)
        assert result.returncode == 2, (result.stdout, result.stderr)
        one_clean_error(result)
        assert f"run dir {target}" in result.stderr and "--run-dir or PORTCTL_RUN_DIR" in result.stderr
    assert not target.exists() or target.is_file()
    assert runner.run("stop").returncode == 0
    assert runner.run("stop", "--port", "8001", "--grace", "1").returncode == 0  # the click path too
    assert runner.run("status", "--port", "8000").returncode == 3


def as_nobody(run_dir: Path, *args: str, spawn) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return portctl_as_nobody(spawn, "--run-dir", str(run_dir), *args)


@needs_nobody
def test_a_read_only_run_dir(shared_tmp: Path, spawn) -> None:  # type: ignore[no-untyped-def]
    ro = shared_tmp / "ro"
    ro.mkdir()
    (ro / ".server_8000.pid").write_text("999999\n")  # stale: no lock held
    import pwd

    nobody = pwd.getpwnam("nobody")
    for path in (ro, ro / ".server_8000.pid"):  # nobody's own files (the security model)
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    (ro / ".server_8000.pid").chmod(0o600)
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    code, _, err = as_nobody(ro, "start", "-d", spawn=spawn)
    assert code == 2 and err.strip() == f"portctl: error: run dir {ro} is not writable (use --run-dir or PORTCTL_RUN_DIR)"
    for stop in (["stop"], ["stop", "--port", "8000", "--grace", "1"]):  # fast path and click
        code, out, err = as_nobody(ro, *stop, spawn=spawn)
        assert code == 0 and "nothing running" in out and err == "", err
    code, out, err = as_nobody(ro, "status", "--port", "8000", spawn=spawn)
    assert code == 3 and "Traceback" not in err, err
    assert [p.name for p in ro.iterdir()] == [".server_8000.pid"]


# ----------------------------------------------------------------------------- a non-local host

def test_a_host_of_another_machine_is_bad_input_not_port_in_use(portctl: Portctl) -> None:
    port = unused_port()
    for detach in ([], ["-d"]):
        result = portctl.run("start", "--port", port, "--host", "192.0.2.1", *detach, "--", *app("listener", "{port}"))
        assert result.returncode == 2, (result.stdout, result.stderr)
        one_clean_error(result)
        assert "address not available on this machine" in result.stderr and "in use" not in result.stderr


# ----------------------------------------------------------------------------- library input

@pytest.mark.parametrize("port", [70000, -5, 0, "8000", 8000.0, True, None])
def test_library_ports_are_checked(port: object) -> None:
    for call in (lambda: portctl.ensure_port_available(port),  # type: ignore[arg-type]
                 lambda: portctl.port_holders(port),  # type: ignore[arg-type]
                 lambda: portctl.free_port(port),  # type: ignore[arg-type]
                 lambda: portctl.find_free_port(preferred=port)):  # type: ignore[arg-type]
        if port is None and call is not None:
            continue
        with pytest.raises(portctl.BadInput) as bad:
            call()
        assert bad.value.exit_code == 2


@pytest.mark.parametrize("port_range", [(10, 5), (0, 10), (1, 70000), (5,), "8000-8100", (1.5, 3)])
def test_find_free_port_checks_its_range(port_range: object) -> None:
    with pytest.raises(portctl.BadInput):
        portctl.find_free_port(port_range=port_range)  # type: ignore[arg-type]


def test_library_timings_and_hosts_are_checked() -> None:
    port = unused_port()
    with pytest.raises(portctl.BadInput):
        portctl.ensure_port_available(port, grace_s=float("nan"))
    with pytest.raises(portctl.BadInput):
        portctl.ensure_port_available(port, host="192.0.2.1")
    with pytest.raises(portctl.BadInput):
        portctl.find_free_port(host="no.such.host.invalid")
    assert portctl.ensure_port_available(port) is True


# ----------------------------------------------------------------------------- a huge log line

def test_tail_of_a_huge_line_is_linear_and_bounded(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    with open(log, "wb") as fh:
        for _ in range(10):
            fh.write(b"x" * (1024 * 1024))  # 10 MB, no newline
    deadline = time.monotonic() + 10  # a hang guard, not a timing assertion
    shown = logs.tail(log, 20)
    assert time.monotonic() < deadline
    assert len(shown) == 1 and 0 < len(shown[0]) <= logs.TAIL_MAX_BYTES
    assert shown[0] == "x" * len(shown[0])


def test_tail_still_reaches_into_the_rotated_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    (tmp_path / "app.log.1").write_text("".join(f"old {i}\n" for i in range(5)))
    log.write_text("new 0\nnew 1\n")
    assert logs.tail(log, 4) == ["old 3", "old 4", "new 0", "new 1"]
    many = "".join(f"line {i}\n" for i in range(100000))
    log.write_text(many)
    assert logs.tail(log, 3) == ["line 99997", "line 99998", "line 99999"]
    assert logs.tail(log, 0) == []
    assert sys.getsizeof(many) > 0
