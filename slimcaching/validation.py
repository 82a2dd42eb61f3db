"""The validation collector shared by every reader (both problem families).

A validator walks a decoded JSON document, records every violation as a
``(json_path, rule)`` pair in a :class:`Collector`, and raises one
:class:`~slimcaching.errors.InputError` at the end, so a user can fix a file
in one pass.  Normalised arrays leave validation read-only (:func:`readonly`).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import Problem

__all__ = ["Collector", "is_int", "is_num", "as_float", "brief", "readonly"]


def brief(v: Any, width: int = 40) -> str:
    """``repr(v)``, shortened in the middle when longer than ``width`` (a 5000-digit number stays one short line)."""
    r = repr(v)
    if len(r) <= width:
        return r
    what = "digits" if isinstance(v, int) and not isinstance(v, bool) else "characters"
    return f"{r[: width // 2]}...{r[-8:]} ({len(r)} {what})"


def as_float(v: Any) -> float:
    """``float(v)`` for a JSON number, ``+-inf`` for an integer too large for a float (never raises)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def is_int(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, float) and math.isfinite(v) and v.is_integer()


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Collector:
    """Collects ``(json_path, rule)`` problems while a validator walks a document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, rule: str) -> None:
        self.problems.append((path, rule))

    def field(self, obj: dict, key: str, path: str, kind: type | tuple, what: str) -> Any:
        """Return ``obj[key]`` if present and of the right JSON type, else record and return None."""
        if key not in obj:
            self.add(f"{path}.{key}", f"missing required field '{key}'")
            return None
        v = obj[key]
        if not isinstance(v, kind) or (isinstance(v, bool) and kind is not bool):
            self.add(f"{path}.{key}", f"must be {what}, got {type(v).__name__}")
            return None
        return v

    def number(self, obj: dict, key: str, path: str, *, positive: bool) -> float | None:
        """Return ``obj[key]`` as a finite float (``> 0`` or ``>= 0``), else record and return None."""
        if key not in obj:
            self.add(f"{path}.{key}", f"missing required field '{key}'")
            return None
        v = obj[key]
        if not is_num(v):
            self.add(f"{path}.{key}", f"must be a number, got {type(v).__name__}")
            return None
        f = as_float(v)
        if not math.isfinite(f) or (f <= 0 if positive else f < 0):
            self.add(f"{path}.{key}", f"must be {'positive' if positive else 'non-negative'} and finite, "
                                      f"got {brief(v)}")
            return None
        return f


def readonly(a: np.ndarray, dtype=None) -> np.ndarray:
    """A read-only contiguous copy-or-view of ``a`` (cast to ``dtype`` when given)."""
    a = np.ascontiguousarray(a if dtype is None else np.asarray(a, dtype=dtype))
    a.setflags(write=False)
    return a
