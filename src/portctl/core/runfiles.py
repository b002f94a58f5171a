"""The run dir: file names, atomic writes and tolerant reads.

``.server_<port>.pid`` holds the supervisor's pid and a newline; ``.server_<port>.json``
is the instance record; ``.server_<port>.lock`` carries the OS lock (see lock.py).
A corrupt, empty, truncated or oversized file reads as None: it is stale, never obeyed.
A file or ``.portctl/`` directory another user could have written is refused (safefile.py).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..base import projectfile, safefile
from ..base.atomic import write_atomic
from ..base.frozen import Frozen, replace
from .identity import ProcRef
from .spec import ServerSpec, check_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional

RECORD_VERSION = 1
_MAX_FILE_BYTES = 64 * 1024
_MAX_SPEC_BYTES = 1024 * 1024  # a saved spec holds the environment, which may be large
_PID_TEXT = re.compile(rb"\A([1-9][0-9]{0,9})\n?\Z")
_RUN_FILE = re.compile(r"\A\.server_([0-9]{1,5})\.(pid|json|lock)\Z")


class Record(Frozen, kw_only=True):
    """Everything known about one instance, written by its supervisor."""

    spec: ServerSpec
    supervisor: ProcRef
    child: Optional[ProcRef]
    started_at: str
    run_dir: str
    token: str
    state: str  # starting | running | unhealthy | backoff | stopping | fatal
    restarts: int = 0
    last_exit: Optional[dict[str, Any]] = None  # {"code", "at", "reason"}
    last_health: Optional[dict[str, Any]] = None  # {"ok", "latency_ms", "detail", "at"}
    reason: str = ""  # why the state is what it is (fatal, unhealthy, restarting)
    log: Optional[str] = None  # the child's log file (detached instances)

    def updated(self, **changes: Any) -> Record:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            **self.spec.to_dict(),
            "supervisor": self.supervisor.to_dict(),
            "child": None if self.child is None else self.child.to_dict(),
            "started_at": self.started_at,
            "run_dir": self.run_dir,
            "token": self.token,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_health": self.last_health,
            "reason": self.reason,
            "log": self.log,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Record:
        if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
            raise ValueError("not a portctl record")
        child = data.get("child")
        return cls(
            spec=ServerSpec.from_dict(data),
            supervisor=ProcRef.from_dict(data["supervisor"]),
            child=None if child is None else ProcRef.from_dict(child),
            started_at=str(data["started_at"]),
            run_dir=str(data["run_dir"]),
            token=str(data["token"]),
            state=str(data["state"]),
            restarts=int(data.get("restarts", 0)),
            last_exit=_optional_dict(data.get("last_exit")),
            last_health=_optional_dict(data.get("last_health")),
            reason=str(data.get("reason", "")),
            log=None if data.get("log") is None else str(data["log"]),
        )


def _optional_dict(value: Any) -> Optional[dict[str, Any]]:
    if value is not None and not isinstance(value, dict):
        raise ValueError("expected an object")
    return value


class RunDir:
    """The directory holding every instance's pid file, record and lock."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        self.path = Path(path).absolute()

    def pid_file(self, port: int) -> Path:
        return self.path / f".server_{port}.pid"

    def record_file(self, port: int) -> Path:
        return self.path / f".server_{port}.json"

    def lock_file(self, port: int) -> Path:
        return self.path / f".server_{port}.lock"

    def spec_file(self, port: int) -> Path:
        """The last spec started on ``port``: outlives the instance, so `restart` works after `stop`."""
        return self.path / ".portctl" / "specs" / f"{port}.json"

    def write_spec(self, spec: ServerSpec) -> None:
        """Save the spec with its environment: readable by its owner only (mode 0600). An
        instance is known by its name: the specs the same name left on other ports go."""
        path = self.spec_file(spec.port)
        safefile.ensure_dir(path.parent, 2)
        write_atomic(path, json.dumps(spec.to_dict(with_env=True), indent=2) + "\n", durable=True)
        self.forget_specs(spec.name, keep=spec.port)

    def forget_specs(self, name: str, keep: Optional[int] = None) -> list[int]:
        """Remove the saved specs of the instance called ``name`` (but the one on ``keep``);
        return their ports."""
        gone = []
        for port in self.saved_ports():
            if port == keep:
                continue
            spec = self.read_spec(port)
            if spec is not None and spec.name == name:
                try:
                    self.spec_file(port).unlink()
                except FileNotFoundError:  # the spec came from a record: it is not ours to drop
                    continue
                gone.append(port)
        return gone

    def read_spec(self, port: int) -> Optional[ServerSpec]:
        """The spec last started on ``port``: the saved one (written with the live record, and
        holding the environment), else the live record's (from an older portctl)."""
        raw = safefile.read_small(self.spec_file(port), _MAX_SPEC_BYTES, depth=2)
        try:
            spec = ServerSpec.from_dict(json.loads(raw)) if raw else None
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
            spec = None
        if spec is not None and spec.port == port:
            return spec
        record = self.read_record(port)
        return record.spec if record is not None else None

    def saved_ports(self) -> list[int]:
        """Every port with a saved spec, ascending."""
        try:
            names = os.listdir(self.spec_file(0).parent)
        except OSError:
            return []
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def name_lock_file(self, name: str) -> Path:
        """Locked by the live instance called ``name`` for its whole life: a name is unique
        among the live instances of a run dir, and the kernel frees it when its holder dies."""
        return self.path / ".portctl" / "names" / f"{name}.lock"

    def log_file(self, name: str) -> Path:
        """``.portctl/logs/NAME.log``; a name that is no name (``../x``, ``/x``) is BadInput."""
        check_name(name)
        return self.path / ".portctl" / "logs" / f"{name}.log"

    def ports(self) -> list[int]:
        """Every port with any run file here, ascending."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return []
        found = {int(m.group(1)) for m in map(_RUN_FILE.match, names) if m}
        return sorted(found)

    def read_pid(self, port: int) -> Optional[int]:
        raw = _read_small(self.pid_file(port))
        match = _PID_TEXT.match(raw) if raw is not None else None
        return int(match.group(1)) if match else None

    def read_record(self, port: int) -> Optional[Record]:
        raw = _read_small(self.record_file(port))
        if raw is None:
            return None
        try:
            record = Record.from_dict(json.loads(raw))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError, RecursionError):
            return None
        return record if record.spec.port == port else None

    def write_pid(self, port: int, pid: int) -> None:
        write_atomic(self.pid_file(port), f"{pid}\n")

    def write_record(self, record: Record) -> None:
        write_atomic(self.record_file(record.spec.port), json.dumps(record.to_dict(), indent=2) + "\n")

    def set_aside(self, port: int) -> list[Path]:
        """``remove`` in two steps, for a supervisor on its way out: the pid file and record
        are renamed out of sight now, while it holds the lock, and ``discard`` deletes them
        once it has let go, off the path of a `stop` waiting for that. Deleting a record whose
        data the file system already wrote out takes ~0.4 ms, up to a few ms on a busy disk
        (ext4); the rename ~0.03 ms. A file that cannot be renamed is removed at once."""
        aside = []
        for path in [self.pid_file(port), self.record_file(port)]:
            gone = path.with_name(f"{path.name}.gone")  # one per port: never a pile of them
            try:
                os.rename(path, gone)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError:  # a directory planted in the way, a read-only run dir: as remove
                try:
                    path.unlink()
                except OSError:
                    pass
                continue
            aside.append(gone)
        return aside

    @staticmethod
    def discard(paths: list[Path]) -> None:
        """Delete what ``set_aside`` put aside (a later supervisor may have already)."""
        for path in paths:
            try:
                path.unlink()
            except OSError:
                continue

    def remove(self, port: int) -> list[Path]:
        """Remove the pid file and record (never the lock file: see ``lock``), and what
        ``set_aside`` left of them; return the pid file and record removed."""
        removed = []
        for path in [self.pid_file(port), self.record_file(port)]:
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):  # a run dir that is a file holds nothing
                continue
            except PermissionError:  # a read-only run dir: the files stay, stale (no lock held)
                continue
            removed.append(path)
        # what a supervisor killed between set_aside and discard left renamed aside
        self.discard([path.with_name(f"{path.name}.gone") for path in [self.pid_file(port), self.record_file(port)]])
        return removed


def find_run_dir(start: Optional[Path] = None) -> Path:
    """The run dir when none is given: the nearest ancestor of ``start`` (default: the current
    directory) holding ``.portctl/``, ``portctl.toml``, a ``pyproject.toml`` with a
    ``[tool.portctl]`` table or a ``Procfile`` (as ``project.config`` finds a project); else
    ``start`` itself. A few stats per level, no TOML parser:
    `status` and `port` run it on every call."""
    here = Path.cwd() if start is None else start.absolute()
    for folder in (here, *here.parents):
        if (folder / ".portctl").is_dir() or projectfile.holds_one(str(folder)):
            return folder
    return here


def project_root(start: Optional[Path] = None) -> Optional[Path]:
    """The nearest ancestor of ``start`` (default: the current directory) holding a project
    file, or None; stats alone, no TOML parser: `status` and `stop` ask on every call."""
    found = projectfile.nearest(str(Path.cwd() if start is None else start.absolute()))
    return Path(found) if found is not None else None


def _read_small(path: Path) -> Optional[bytes]:
    return safefile.read_small(path, _MAX_FILE_BYTES)
