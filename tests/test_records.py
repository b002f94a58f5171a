"""The frozen record base that stands in for dataclasses (pure logic, no processes)."""
from __future__ import annotations

from typing import Optional

import pytest

from portctl.base.frozen import Frozen, asdict, fields, replace


class Point(Frozen):
    x: int
    y: int = 0
    label: Optional[str] = None


class Labelled(Point):
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must be >= 0")
        object.__setattr__(self, "label", self.label or f"p{self.x}")


def test_fields_come_from_annotations_in_order_bases_first() -> None:
    assert fields(Point) == ("x", "y", "label")
    assert fields(Labelled(1)) == ("x", "y", "label", "tags")


def test_positional_keyword_and_default_values() -> None:
    p = Point(1, label="a")
    assert (p.x, p.y, p.label) == (1, 0, "a")
    assert Point(x=2, y=3) == Point(2, 3)


@pytest.mark.parametrize("call", [
    lambda: Point(),                 # missing x
    lambda: Point(1, 2, "a", "b"),   # too many
    lambda: Point(1, x=2),           # repeated
    lambda: Point(1, z=3),           # unknown
])
def test_bad_construction_is_a_type_error(call: object) -> None:
    with pytest.raises(TypeError):
        call()  # type: ignore[operator]


def test_frozen() -> None:
    p = Point(1)
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.y  # type: ignore[misc]


def test_equality_and_hash_by_value_and_type() -> None:
    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Point(1, 3)
    assert Point(1) != Labelled(1)
    assert Point(1, 2) != (1, 2, None)
    assert len({Point(1, 2), Point(1, 2), Point(2)}) == 2


def test_post_init_normalises_and_validates_on_replace_too() -> None:
    p = Labelled(3)
    assert p.label == "p3"
    moved = replace(p, x=4, label=None)
    assert (moved.x, moved.label, p.x) == (4, "p4", 3)
    with pytest.raises(ValueError):
        replace(p, x=-1)


def test_asdict_is_recursive_and_copies_containers() -> None:
    inner = Point(1, 2)
    outer = Labelled(5, tags=("a", "b"))
    assert asdict(outer) == {"x": 5, "y": 0, "label": "p5", "tags": ("a", "b")}

    class Pair(Frozen):
        first: Point
        rest: list[Point]

    assert asdict(Pair(inner, [inner])) == {"first": {"x": 1, "y": 2, "label": None},
                                            "rest": [{"x": 1, "y": 2, "label": None}]}


def test_repr_names_every_field() -> None:
    assert repr(Point(1, label="a")) == "Point(x=1, y=0, label='a')"


class Wide(Frozen, kw_only=True):
    a: int
    b: int = 0


class WideChild(Wide):
    c: int = 0


@pytest.mark.parametrize("call", [lambda: Wide(1), lambda: Wide(1, 2), lambda: WideChild(1, 2, a=0)])
def test_kw_only_fields_refuse_positions(call: object) -> None:
    with pytest.raises(TypeError, match="keyword-only"):
        call()  # type: ignore[operator]


def test_kw_only_fields_by_keyword_and_a_subclass_own_fields_by_position() -> None:
    assert Wide(a=1, b=2) == replace(Wide(a=1), b=2)
    child = WideChild(3, a=1)  # like dataclasses: only the class that says kw_only is keyword-only
    assert (child.a, child.b, child.c) == (1, 0, 3)


@pytest.mark.parametrize("wide", ["portctl.core.runfiles.Record", "portctl.core.spec.ServerSpec",
                                  "portctl.core.ports.Holder", "portctl.platform.records.ProcessInfo"])
def test_portctls_wide_records_are_keyword_only(wide: str) -> None:
    import importlib

    module, name = wide.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    assert cls._positional == ()
