"""A small, deterministic YAML writer for the exports: mappings in the order given, block
style, every string double-quoted (JSON's escapes are YAML's), so no value is ever read back
as a number, a boolean or a date."""
from __future__ import annotations

import json
import re
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# what YAML does not allow raw in a quoted scalar, or reads as a line break (JSON escapes < 0x20)
_ESCAPE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def dump(data: Any) -> str:
    """``data`` (dicts, lists, strings, ints, bools, None) as a YAML document."""
    return "\n".join(_lines(data, 0)) + "\n"


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quoted(value)
    raise TypeError(f"cannot write {type(value).__name__} as YAML")


def _key(key: str) -> str:
    return key if _PLAIN_KEY.fullmatch(key) and key not in ("true", "false", "null", "yes", "no", "on", "off") \
        else _quoted(key)


def _quoted(text: str) -> str:
    return _ESCAPE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", json.dumps(text, ensure_ascii=False))


def _lines(data: Any, indent: int) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value:
                out.append(f"{pad}{_key(key)}:")
                out.extend(_lines(value, indent + 2))
            else:
                out.append(f"{pad}{_key(key)}: {_inline_empty(value)}")
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (dict, list)) and item:
                nested = _lines(item, indent + 2)
                out.append(f"{pad}- {nested[0].lstrip()}")
                out.extend(nested[1:])
            else:
                out.append(f"{pad}- {_inline_empty(item)}")
    else:
        out.append(pad + _scalar(data))
    return out


def _inline_empty(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)
