"""Frozen value records, declared like dataclasses, without importing ``dataclasses``.

``dataclasses`` imports ``inspect`` and ``ast``: about 15 ms, as much as Python's own
start-up, paid by every `portctl who`, `status` or `port` a Makefile runs (see
docs/benchmarks.md). portctl's records need little of it: fields from the class's
annotations, class-level defaults, immutability, equality and hashing by value,
``replace`` and ``asdict``. Type checkers see subclasses as frozen dataclasses.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar, TypeVar

    from typing_extensions import dataclass_transform

    R = TypeVar("R", bound="Frozen")
else:
    def dataclass_transform(**_options: object):  # noqa: ANN202 - a no-op at run time
        return lambda cls: cls


@dataclass_transform(frozen_default=True)
class Frozen:
    """Subclass and annotate the fields; a field with a class-level value has that default.
    Names starting with ``_`` are not fields. ``__post_init__`` may normalise or validate
    (with ``object.__setattr__``), as in a frozen dataclass. ``class R(Frozen, kw_only=True)``
    makes R's own fields keyword-only, as ``dataclass(kw_only=True)`` does: wide records are
    built by name, never by position."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _positional: ClassVar[tuple[str, ...]] = ()  # the fields that may be given by position

    def __init_subclass__(cls, kw_only: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = [name for name in cls.__dict__.get("__annotations__", {}) if not name.startswith("_")]
        new = tuple(name for name in own if name not in cls._fields)
        cls._fields = cls._fields + new
        cls._positional = cls._positional + (() if kw_only else new)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        name = type(self).__name__
        if len(args) > len(self._positional):
            raise TypeError(f"{name} takes at most {len(self._positional)} fields by position, got {len(args)}"
                            + (" (the others are keyword-only)" if len(self._positional) < len(self._fields) else ""))
        values = dict(zip(self._positional, args))
        for key, value in kwargs.items():
            if key not in self._fields or key in values:
                raise TypeError(f"{name} got an unexpected or repeated field {key!r}")
            values[key] = value
        missing = [f for f in self._fields if f not in values and not hasattr(type(self), f)]
        if missing:
            raise TypeError(f"{name} is missing {', '.join(missing)}")
        self.__dict__.update(values)  # absent fields read their class-level default
        self.__post_init__()

    def __post_init__(self) -> None:
        """Normalise or validate after the fields are set (nothing by default)."""

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use replace()")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({shown})"


def fields(record: Frozen | type[Frozen]) -> tuple[str, ...]:
    """The field names, in declaration order (base classes first)."""
    return record._fields


def replace(record: R, **changes: Any) -> R:
    """A copy of ``record`` with ``changes`` (validated again by ``__post_init__``)."""
    return type(record)(**{**{f: getattr(record, f) for f in record._fields}, **changes})


def asdict(record: Frozen) -> dict[str, Any]:
    """The fields as a dict, nested records as dicts too; tuples, lists and dicts are copied."""
    return {f: _plain(getattr(record, f)) for f in record._fields}


def _plain(value: Any) -> Any:
    if isinstance(value, Frozen):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
