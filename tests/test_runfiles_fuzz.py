"""Damaged run files never crash `status`/`stop` and never aim a signal anywhere.

Random bytes, huge, empty, truncated or well-formed-but-wrong content in ``.server_<port>.pid``
and ``.server_<port>.json``, with no lock held (so: no live instance). Many of the generated
files name a live bystander by pid, and even by pid *and* creation time: it must get no signal.
Pids 0 and -1 are left out of the generated texts on purpose: a buggy kill() of either would
hit processes far beyond this test (our process group, or everything we may signal).

Both entry paths run in-process: click's ``cli`` through CliRunner, and the click-free fast
path of the console script (``portctl._entry._fast``), which is what `python -m portctl status`
and `stop` actually use. A handful of fixed nasty files also go through the real console entry
in a subprocess.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

import psutil
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.apps import untouched
from support.portctl import Portctl
from portctl import _entry
from portctl.cli import cli

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PORT = 47913  # run files only: nothing listens or is started on it

# Placeholders replaced at run time by the bystander's identity.
BYSTANDER, BYSTANDER_CT = "@BYSTANDER@", "@BYSTANDER_CT@"

pid_texts = st.one_of(
    st.binary(max_size=64),
    st.just(b""),
    st.sampled_from([BYSTANDER, "99999999", "4194305", "1e3", " 12 ", "0x10", "\x00", "१२३"]).flatmap(
        lambda pid: st.tuples(st.sampled_from(["", " ", "\n", "\n\n", "\r\n", "garbage", "\x00"]),
                              st.sampled_from(["", "\n", " extra\n", "\n12\n"])).map(
            lambda affixes: (affixes[0] + pid + affixes[1]).encode())),
    st.integers(min_value=10_000, max_value=3_000_000).map(lambda n: b"7" * n),  # huge
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=True), st.text(max_size=20),
                         st.sampled_from([BYSTANDER, BYSTANDER_CT]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)


def template(state: str) -> dict[str, Any]:
    """The shape of a real record, naming the bystander as supervisor and child."""
    ident = {"pid": BYSTANDER, "create_time": BYSTANDER_CT}
    return {"version": 1, "name": "fuzz", "port": PORT, "host": "127.0.0.1", "command": ["x", "{port}"],
            "supervisor": dict(ident), "child": dict(ident), "started_at": "2024-01-01T00:00:00+00:00",
            "run_dir": ".", "token": "t" * 32, "state": state, "grace_s": 0.1, "ready_timeout_s": 1.0}


@st.composite
def records(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "fields", "truncated", "huge"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    record = template(draw(st.sampled_from(["running", "starting", "stopping", "fatal", "stale", "??"])))
    for key in draw(st.lists(st.sampled_from(sorted(record) + ["extra"]), max_size=3)):
        record[key] = draw(json_values)
    text = json.dumps(record).encode()
    if kind == "truncated":
        return text[:draw(st.integers(min_value=0, max_value=len(text) - 1))]
    if kind == "huge":
        return text[:-1] + b', "pad": "' + b"x" * draw(st.integers(10_000, 3_000_000)) + b'"}'
    return text


lock_contents = st.one_of(st.none(), st.just(b""), st.binary(max_size=32))


def materialise(content: bytes, bystander: psutil.Process) -> bytes:
    out = content.replace(BYSTANDER.encode(), str(bystander.pid).encode())
    ct = json.dumps(bystander.create_time()).encode()
    return out.replace(f'"{BYSTANDER_CT}"'.encode(), ct).replace(BYSTANDER_CT.encode(), ct) \
        .replace(f'"{bystander.pid}"'.encode(), str(bystander.pid).encode())


def write_run_dir(run_dir: Path, pid: Optional[bytes], record: Optional[bytes], lock: Optional[bytes],
                  bystander: psutil.Process) -> None:
    if pid is not None:
        (run_dir / f".server_{PORT}.pid").write_bytes(materialise(pid, bystander))
    if record is not None:
        (run_dir / f".server_{PORT}.json").write_bytes(materialise(record, bystander))
    if lock is not None:
        (run_dir / f".server_{PORT}.lock").write_bytes(lock)  # a lock file nobody holds


@contextlib.contextmanager
def fresh_run_dir() -> Any:
    path = Path(tempfile.mkdtemp(prefix="portctl-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def via_click(run_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--run-dir", str(run_dir), *args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"portctl {' '.join(args)} crashed: {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


def via_entry(run_dir: Path, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = _entry._fast(["--run-dir", str(run_dir), *args])  # exceptions propagate: a crash
    assert code is not None, f"the fast path declined {args}"
    return code, out.getvalue(), err.getvalue()


def check_commands(run_dir: Path, invoke: Any) -> None:
    code, out, err = invoke(run_dir, "status", "--json")
    assert code == 0 and "Traceback" not in out + err, (code, out, err)
    rows = json.loads(out)
    assert isinstance(rows, list) and all(row["state"] not in ("running", "starting") for row in rows)

    code, out, err = invoke(run_dir, "status", "--port", str(PORT), "--json")
    assert code == 3 and "Traceback" not in out + err, (code, out, err)

    code, out, err = invoke(run_dir, "stop", "--port", str(PORT))
    assert code == 0 and "Traceback" not in out + err, (code, out, err)
    assert not (run_dir / f".server_{PORT}.pid").exists()  # stale files go
    assert not (run_dir / f".server_{PORT}.json").exists()

    code, out, err = invoke(run_dir, "status", "--json")
    assert code == 0 and json.loads(out) == [], (code, out, err)


@pytest.fixture
def target(bystander) -> tuple[Any, psutil.Process]:  # type: ignore[no-untyped-def]
    return bystander, psutil.Process(bystander.pid)


@pytest.mark.parametrize("invoke", [via_click, via_entry], ids=["click", "fast-entry"])
@FUZZ
@given(pid=st.none() | pid_texts, record=st.none() | records(), lock=lock_contents)
def test_damaged_run_files_never_crash_nor_signal(target, invoke: Any, pid: Optional[bytes],  # type: ignore[no-untyped-def]
                                                  record: Optional[bytes], lock: Optional[bytes]) -> None:
    popen, bystander = target
    with fresh_run_dir() as run_dir:
        write_run_dir(run_dir, pid, record, lock, bystander)
        check_commands(run_dir, invoke)
    assert untouched(popen), "a damaged run file got a process signalled"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pid, record", [
    (b"", b""),
    (b"\x00" * 10, b"\xff\xfe{"),
    (b"7" * 5_000_000, b"[" * 100_000),  # huge, and deeply nested JSON
    (b"@BYSTANDER@\n", json.dumps(template("running")).encode()),
    (b"@BYSTANDER@\n", json.dumps(template("running"))[:40].encode()),
    (b"@BYSTANDER@ @BYSTANDER@\n", b'{"version": 1}'),
    (None, json.dumps({**template("running"), "port": "47913"}).encode()),
], ids=["empty", "binary", "huge", "bystander", "truncated", "two-pids", "port-as-text"])
def test_damaged_run_files_through_the_console_entry(portctl: Portctl, target, pid: Optional[bytes],  # type: ignore[no-untyped-def]
                                                     record: Optional[bytes]) -> None:
    popen, bystander = target
    write_run_dir(portctl.run_dir, pid, record, b"", bystander)
    for args, codes in ((["status", "--json"], {0}), (["status"], {0}), (["status", "--port", PORT], {3}),
                        (["stop", "--port", PORT], {0}), (["clean"], {0})):
        result = portctl.run(*args)
        assert result.returncode in codes, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr, (args, result.stderr)
    assert untouched(popen)
    assert not [p for p in portctl.run_dir.iterdir() if p.name.startswith(f".server_{PORT}.")]
