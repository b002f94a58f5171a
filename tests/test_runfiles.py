"""Run files: atomic writes, tolerant reads, record round trips (no processes)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portctl.core.identity import ProcRef
from portctl.core.runfiles import Record, RunDir
from portctl.core.spec import ServerSpec


def record(port: int = 8001, **changes: object) -> Record:
    spec = ServerSpec(port=port, command=("srv", "{port}"), name="api")
    base = Record(spec=spec, supervisor=ProcRef(123, 1000.5), child=ProcRef(124, 1001.25),
                  started_at="2026-01-01T00:00:00+00:00", run_dir="/tmp/x", token="tok", state="running")
    return base.updated(**changes)


def test_pid_file_is_pid_and_newline(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.write_pid(8001, 4242)
    assert run_dir.pid_file(8001).read_text() == "4242\n"
    assert run_dir.read_pid(8001) == 4242
    assert not list(tmp_path.glob("*.tmp"))


def test_record_round_trip(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    rec = record(restarts=2, last_exit={"code": 3, "at": "t", "reason": "exited"})
    run_dir.write_record(rec)
    assert run_dir.read_record(8001) == rec
    assert run_dir.ports() == [8001]


def test_record_for_another_port_is_refused(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.write_record(record(port=8002))
    run_dir.record_file(8002).rename(run_dir.record_file(8001))
    assert run_dir.read_record(8001) is None


@pytest.mark.parametrize("content", [b"", b"\n", b"abc\n", b"-5\n", b"0\n", b"12 34\n", b"1" * 20, b"\x00\xff"])
def test_bad_pid_files_read_as_none(tmp_path: Path, content: bytes) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.pid_file(8001).write_bytes(content)
    assert run_dir.read_pid(8001) is None


def test_oversized_files_read_as_none(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.pid_file(8001).write_bytes(b"1" * 100_000)
    run_dir.record_file(8001).write_text(json.dumps({**record().to_dict(), "pad": "x" * 100_000}))
    assert run_dir.read_pid(8001) is None and run_dir.read_record(8001) is None


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(content=st.binary(max_size=2000))
def test_random_bytes_never_crash(tmp_path: Path, content: bytes) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.pid_file(8001).write_bytes(content)
    run_dir.record_file(8001).write_bytes(content)
    run_dir.read_pid(8001)
    assert run_dir.read_record(8001) is None or content.strip().startswith(b"{")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(key=st.sampled_from(sorted(record().to_dict())), value=json_values)
def test_damaged_record_fields_are_stale_not_crashes(tmp_path: Path, key: str, value: object) -> None:
    data = record().to_dict()
    data[key] = value
    run_dir = RunDir(tmp_path)
    run_dir.record_file(8001).write_text(json.dumps(data))
    run_dir.read_record(8001)  # either a valid record or None; never an exception


def test_truncated_record_is_stale(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    run_dir.write_record(record())
    text = run_dir.record_file(8001).read_text()
    run_dir.record_file(8001).write_text(text[: len(text) // 2])
    assert run_dir.read_record(8001) is None
