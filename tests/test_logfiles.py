"""The log writer and reader: rotation, tail, follow across rotation and truncation."""
from __future__ import annotations

import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portctl.core.logs import RotatingLog, follow, pump, tail

pytestmark = pytest.mark.timeout(30)


def test_rotation_keeps_order_and_drops_the_oldest(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log", max_bytes=100, backups=2)
    for i in range(40):
        log.write(f"line {i:02d} ........\n".encode())  # 17 bytes
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.log", "a.log.1", "a.log.2"]
    text = "".join((tmp_path / n).read_text() for n in ("a.log.2", "a.log.1", "a.log"))
    numbers = [int(line.split()[1]) for line in text.splitlines()]
    assert numbers == sorted(numbers) and numbers[-1] == 39 and numbers[0] > 0
    assert all((tmp_path / n).stat().st_size <= 100 for n in names)


def test_lifecycle_lines_are_marked(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log")
    log.write(b"child says hi\n")
    log.lifecycle("ready elapsed_ms=12")
    log.close()
    first, second = (tmp_path / "a.log").read_text().splitlines()
    assert first == "child says hi"
    assert second.startswith("[portctl 20") and second.endswith("] ready elapsed_ms=12")


def test_concurrent_writes_never_interleave(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log", max_bytes=10**9)
    lines = {name: (name * 200 + "\n").encode() for name in "xy"}

    def writer(name: str) -> None:
        for _ in range(300):
            log.write(lines[name])

    threads = [threading.Thread(target=writer, args=(n,)) for n in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    log.close()
    assert all(line in ("x" * 200, "y" * 200) for line in (tmp_path / "a.log").read_text().splitlines())


def test_pump_copies_both_streams_of_a_child(tmp_path: Path) -> None:
    log = RotatingLog(tmp_path / "a.log")
    # one write per line (print() writes the newline apart when unbuffered)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdout.write('out\\n'); sys.stderr.write('err\\n')"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pumps = [threading.Thread(target=pump, args=(s, log)) for s in (child.stdout, child.stderr)]
        for t in pumps:
            t.start()
        for t in pumps:
            t.join(timeout=20)
    finally:
        child.kill()
        child.wait(timeout=10)
    log.close()
    assert sorted((tmp_path / "a.log").read_text().split()) == ["err", "out"]


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(lines=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30),
                      max_size=300), n=st.integers(0, 400))
def test_tail_matches_the_naive_reading(tmp_path: Path, lines: list[str], n: int) -> None:
    path = tmp_path / "t.log"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    assert tail(path, n) == (path.read_text(encoding="utf-8").splitlines()[-n:] if n else [])
    path.unlink()


def test_tail_reaches_into_the_backup(tmp_path: Path) -> None:
    (tmp_path / "t.log.1").write_text("a\nb\n")
    (tmp_path / "t.log").write_text("c\n")
    assert tail(tmp_path / "t.log", 2) == ["b", "c"]
    assert tail(tmp_path / "missing.log", 5) == []


def collect(path: Path, stop: threading.Event) -> "queue.Queue[str]":
    lines: queue.Queue[str] = queue.Queue()

    def run() -> None:
        for line in follow(path, 0, poll_s=0.01, stop=stop.is_set):
            lines.put(line)

    threading.Thread(target=run, daemon=True).start()
    return lines


def expect(lines: "queue.Queue[str]", wanted: list[str]) -> None:
    assert [lines.get(timeout=10) for _ in wanted] == wanted


def test_follow_across_rotation_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    log = RotatingLog(path, max_bytes=30, backups=3)
    log.write(b"before\n")
    stop = threading.Event()
    lines = collect(path, stop)
    try:
        # follow() starts at the end once it has the file open: wait until it echoes a marker
        for i in range(100):
            log.write(f"hello {i}\n".encode())
            try:
                if lines.get(timeout=0.05).startswith("hello"):
                    break
            except queue.Empty:
                continue
        while not lines.empty():
            lines.get_nowait()
        log.write(b"one\n")
        expect(lines, ["one"])
        for word in ("two", "three", "four", "five", "six"):  # each write rotates at 30 bytes
            log.write(f"{word} ................\n".encode())
            expect(lines, [f"{word} ................"])
        assert (tmp_path / "f.log.3").exists()
        log.close()
        path.write_text("")  # truncated in place
        with open(path, "a") as fh:
            fh.write("again\n")
        expect(lines, ["again"])
    finally:
        stop.set()
        log.close()
