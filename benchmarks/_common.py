"""Shared benchmark helpers: timing whole commands, statistics, tables, docs sections."""
from __future__ import annotations

import os
import platform
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"


def portctl_exe() -> str:
    """The console script of the interpreter running the benchmark."""
    exe = Path(sys.executable).parent / "portctl"
    return str(exe) if exe.exists() else "portctl"


def summary(samples: Sequence[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def fmt_ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine(load: Optional[tuple[float, float, float]] = None) -> str:
    """nproc, kernel, Python, the time, and the load average seen before the run (if given)."""
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    loads = f", load average {' / '.join(f'{x:.2f}' for x in load)} before the run" if load else ""
    return (f"{nproc} CPUs (nproc), Linux {platform.release()}, Python {platform.python_version()}, "
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC{loads}")


def write_section(name: str, text: str) -> None:
    """Replace the section between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in docs."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n\nRun them with the commands below; each run rewrites its own section.\n"
    block = f"{begin}\n{text.strip()}\n{end}"
    if begin in doc and end in doc:
        doc = doc[:doc.index(begin)] + block + doc[doc.index(end) + len(end):]
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(doc)
