"""Values inside a claim that no schema type rules out: non-finite numbers nested in parameters,
and control characters (NUL, ANSI escapes) that would reach the HTML or a terminal."""
from __future__ import annotations

import math
import re
from typing import Any, Iterator

__all__ = ["hazards"]

# Tab, newline and carriage return are text; every other C0/C1 control character is not.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def hazards(data: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """(dotted field, message) for each non-finite number or control character in the data."""
    if isinstance(data, dict):
        for k, v in data.items():
            key = str(k)
            sub = f"{where}.{key}" if where else key
            if _CONTROL.search(key):
                yield sub, f"key contains a control character ({_CONTROL.search(key).group()!r})"
            yield from hazards(v, sub)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from hazards(v, f"{where}.{i}" if where else str(i))
    elif isinstance(data, float) and not math.isfinite(data):
        yield where or "(top level)", f"must be a finite number (got {data})"
    elif isinstance(data, str) and _CONTROL.search(data):
        yield where or "(top level)", (f"contains a control character ({_CONTROL.search(data).group()!r}); "
                                       f"only tab and newline are allowed in text")
