"""Quality oracles ``q_k(S)`` of the MoE² family: a table, a noisy-OR model, or any Python callable.

Every algorithm reads the quality of a subset only through a model's
:meth:`QualityModel.values` (counted by :class:`slimcaching.moe2.common.CountingOracle`),
so the number of experts is limited by what the model costs, not by a
``2**M`` table.  The learned-gating model lives in :mod:`slimcaching.moe2.gating`.

What the exact methods may assume is data on the model:

* ``monotone`` -- *proven* ``q_k(S + i) >= q_k(S) - 1e-12`` for every ``S, i``.
  Only then may DMO bound a box ``[lo, hi]`` by ``q_k(hi)``; otherwise it asks
  :meth:`QualityModel.upper` for a bound on ``max_{lo <= T <= hi} q_k(T)``;
* ``submodular`` -- proven diminishing returns (``True``), proven not
  (``False``) or unknown (``None``); ``greedy``'s guarantee needs ``True``.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ..validation import Collector, is_num, readonly
from .bits import bit_matrix, subset_key

__all__ = ["QualityModel", "TableQuality", "NoisyOrQuality", "CallableQuality", "MONOTONE_TOL",
           "table_monotone_violations", "noisy_or_from_dict"]

MONOTONE_TOL = 1e-12      # q(S | {i}) >= q(S) - MONOTONE_TOL


class QualityModel:
    """The interface every quality oracle implements (``C`` categories, ``M`` experts).

    Subclasses define :meth:`values`; the defaults of the other methods are
    correct for any model (``upper`` needs ``monotone``, or raises).
    """

    kind = "abstract"
    C: int
    M: int
    submodular: bool | None = None

    @property
    def monotone(self) -> bool:
        """Proven monotone non-decreasing in every category (up to :data:`MONOTONE_TOL`)."""
        return False

    def values(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``float64 (n,)``: ``q_k`` of each mask in ``masks`` (``int64 (n,)``)."""
        raise NotImplementedError

    def value(self, k: int, mask: int) -> float:
        return float(self.values(k, np.array([mask], dtype=np.int64))[0])

    def upper(self, k: int, lo: int, hi: int) -> float:
        """An upper bound on ``max { q_k(T) : lo <= T <= hi }`` (``lo`` a subset of ``hi``).

        Monotone models return ``q_k(hi)``, which is the maximum.  A model that
        is not proven monotone must override this with a valid bound.
        """
        if not self.monotone:
            raise NotImplementedError(f"a {self.kind} quality that is not proven monotone needs its own upper bound")
        return self.value(k, hi)

    def usage(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``float64 (n, M)``: the share of category ``k``'s requests on which each expert runs.

        Dense gating (every model here but a gate with a per-query top-k) runs
        every selected expert on every request: the bit matrix of ``masks``.
        """
        return bit_matrix(masks, self.M).astype(np.float64)

    @property
    def routes_per_query(self) -> bool:
        """Whether fewer than all selected experts may run on a request (per-query top-k)."""
        return False

    def to_dict(self) -> dict[str, Any]:
        """The ``"quality"`` object of a ``moe2-instance/2`` file."""
        raise NotImplementedError(f"a {self.kind} quality cannot be written to a file")

    def hash_parts(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        """``(header, arrays)`` fed to the instance's content hash: every number that defines ``q``."""
        raise NotImplementedError

    def to_table(self) -> "TableQuality":
        """Every ``q_k(S)`` tabulated (``2**M`` evaluations per category; for small ``M``)."""
        allm = np.arange(1 << self.M, dtype=np.int64)
        return TableQuality(np.vstack([self.values(k, allm) for k in range(self.C)]))


# ------------------------------------------------------------------ a table over all subsets
def table_monotone_violations(table: np.ndarray) -> tuple[int, tuple[int, int, int] | None]:
    """``(count, first)``: pairs ``(S, S + i)`` of one row with ``q(S + i) < q(S) - 1e-12``;
    ``first = (S, S + i, i)`` of the first one found (``None`` when monotone).  ``table``: ``(2**M,)``."""
    n = len(table)
    M = n.bit_length() - 1
    masks = np.arange(n, dtype=np.int64)
    first, count = None, 0
    for i in range(M):
        without = masks[(masks >> i) & 1 == 0]
        bad = without[table[without | (1 << i)] < table[without] - MONOTONE_TOL]
        count += len(bad)
        if len(bad) and first is None:
            first = (int(bad[0]), int(bad[0]) | (1 << i), i)
    return count, first


class TableQuality(QualityModel):
    """``q_k(S)`` given for every subset: ``table[k, mask]``, ``float64 (C, 2**M)``.

    ``monotone`` is checked (once, ``O(C M 2**M)``) rather than assumed; tables
    read from files are checked by the validator.  For a table that is not
    monotone, :meth:`upper` uses the envelope ``max_{T <= hi} q_k(T)``.
    """

    kind = "table"

    def __init__(self, table: np.ndarray):
        t = readonly(table, np.float64)
        if t.ndim != 2 or t.shape[1] < 1 or t.shape[1] & (t.shape[1] - 1):
            raise ValueError(f"a quality table must have shape (C, 2**M), got {t.shape}")
        self.table = t
        self.C, self.M = t.shape[0], t.shape[1].bit_length() - 1
        self._monotone: bool | None = None
        self._envelope: np.ndarray | None = None

    @property
    def monotone(self) -> bool:
        if self._monotone is None:
            self._monotone = all(table_monotone_violations(row)[0] == 0 for row in self.table)
        return self._monotone

    def values(self, k: int, masks: np.ndarray) -> np.ndarray:
        return self.table[k, np.asarray(masks, dtype=np.int64)].astype(np.float64)

    def value(self, k: int, mask: int) -> float:
        return float(self.table[k, mask])

    def upper(self, k: int, lo: int, hi: int) -> float:
        if self.monotone:
            return float(self.table[k, hi])
        if self._envelope is None:  # env[S] = max_{T <= S} q(T), by one pass per expert
            env = np.array(self.table)
            for i in range(self.M):
                b = 1 << i
                blocks = env.reshape(self.C, -1, 2 * b)
                np.maximum(blocks[:, :, b:], blocks[:, :, :b], out=blocks[:, :, b:])
            self._envelope = readonly(env)
        return float(self._envelope[k, hi])

    def category_dict(self, k: int) -> dict[str, float]:
        """Category ``k``'s table as the ``moe2-instance/1`` key -> value object."""
        return {subset_key(m): float(x) for m, x in enumerate(self.table[k])}

    def hash_parts(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        return {"kind": "table"}, [self.table]

    def to_table(self) -> "TableQuality":
        return self


# ------------------------------------------------------------------ noisy-OR
class NoisyOrQuality(QualityModel):
    """``q_k(S) = c_k (1 - prod_{i in S} (1 - a_{k,i}))``: the chance that some selected expert answers well.

    Parameters
    ----------
    ceiling : float64 (C,)       ``c_k >= 0``.
    strength : float64 (C, M)    ``a_{k,i}`` in ``[0, 1]``.

    Notes
    -----
    Monotone and submodular (a non-negative multiple of one minus a product of
    factors in ``[0, 1]``), so both flags are proven.  One evaluation costs
    ``O(M)``; the product runs in increasing expert order, so the values equal
    those of the table :func:`~slimcaching.moe2.generator.generate_moe2` writes
    for the same draws, bit for bit.
    """

    kind = "noisy-or"
    submodular = True

    def __init__(self, ceiling: np.ndarray, strength: np.ndarray):
        self.ceiling = readonly(ceiling, np.float64)
        self.strength = readonly(strength, np.float64)
        if self.strength.ndim != 2 or self.ceiling.shape != (self.strength.shape[0],):
            raise ValueError(f"ceiling (C,) and strength (C, M) do not match: {self.ceiling.shape}, "
                             f"{self.strength.shape}")
        if (self.ceiling < 0).any() or (self.strength < 0).any() or (self.strength > 1).any():
            raise ValueError("noisy-OR needs ceiling >= 0 and strength in [0, 1]")
        self.C, self.M = self.strength.shape
        self._miss = 1.0 - self.strength

    @property
    def monotone(self) -> bool:
        return True

    def values(self, k: int, masks: np.ndarray) -> np.ndarray:
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        miss = np.ones(len(masks))
        for i in range(self.M):
            hit = (masks >> i) & 1 == 1
            miss[hit] *= self._miss[k, i]
        return self.ceiling[k] * (1.0 - miss)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ceiling": [float(x) for x in self.ceiling],
                "strength": [[float(x) for x in row] for row in self.strength]}

    def hash_parts(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        return {"kind": self.kind}, [self.ceiling, self.strength]


def _number_matrix(c: Collector, v: Any, path: str, shape: tuple[int, ...], lo: float, hi: float,
                   what: str) -> np.ndarray | None:
    """A nested list of finite numbers of ``shape`` with every entry in ``[lo, hi]``, else record and None."""
    def walk(x: Any, depth: int, p: str) -> bool:
        if depth == len(shape):
            if not is_num(x) or not math.isfinite(float(x)):
                c.add(p, f"must be a finite number, got {x!r}")
                return False
            if not lo <= float(x) <= hi:
                c.add(p, f"{what} must be in [{lo:g}, {hi:g}], got {float(x)!r}")
                return False
            return True
        if not isinstance(x, list) or len(x) != shape[depth]:
            got = f"{len(x)} entries" if isinstance(x, list) else type(x).__name__
            c.add(p, f"must be a list of {shape[depth]} {'numbers' if depth == len(shape) - 1 else 'lists'}, "
                     f"got {got}")
            return False
        return all([walk(y, depth + 1, f"{p}[{j}]") for j, y in enumerate(x)])

    return np.array(v, dtype=np.float64) if walk(v, 0, path) else None


def noisy_or_from_dict(c: Collector, d: dict, path: str, C: int, M: int) -> NoisyOrQuality | None:
    """Validate a ``{"kind": "noisy-or", "ceiling": [C], "strength": [C][M]}`` object."""
    ceiling = strength = None
    if "ceiling" not in d:
        c.add(f"{path}.ceiling", "missing required field 'ceiling'")
    else:
        ceiling = _number_matrix(c, d["ceiling"], f"{path}.ceiling", (C,), 0.0, math.inf, "ceiling")
    if "strength" not in d:
        c.add(f"{path}.strength", "missing required field 'strength'")
    else:
        strength = _number_matrix(c, d["strength"], f"{path}.strength", (C, M), 0.0, 1.0, "strength")
    if ceiling is None or strength is None:
        return None
    return NoisyOrQuality(ceiling, strength)


# ------------------------------------------------------------------ any callable
class CallableQuality(QualityModel):
    """``q_k(S) = fn(k, mask)`` for a Python function (in memory only; cannot be written to a file).

    Parameters
    ----------
    fn : callable (int, int) -> float
        Category index and bit mask to quality.
    C, M : int
    monotone : bool
        Declare ``True`` only when ``fn`` is *proven* monotone non-decreasing:
        DMO then certifies optimality with the bound ``q_k(hi)``.  An
        undeclared callable needs ``upper``.
    upper : callable (k, lo, hi) -> float, optional
        A valid bound on ``max_{lo <= T <= hi} q_k(T)``, for non-monotone ``fn``.
    submodular : bool or None
    key : str, optional
        What identifies ``fn`` in the instance's content hash (default: its
        module and qualified name).  Two different functions with one key
        share result rows, so give each its own.
    """

    kind = "callable"

    def __init__(self, fn: Callable[[int, int], float], C: int, M: int, *, monotone: bool = False,
                 upper: Callable[[int, int, int], float] | None = None, submodular: bool | None = None,
                 key: str | None = None):
        self.fn, self.C, self.M = fn, int(C), int(M)
        self._monotone, self._upper, self.submodular = bool(monotone), upper, submodular
        self.key = key or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    @property
    def monotone(self) -> bool:
        return self._monotone

    def values(self, k: int, masks: np.ndarray) -> np.ndarray:
        return np.array([float(self.fn(k, int(m))) for m in np.asarray(masks).reshape(-1)], dtype=np.float64)

    def upper(self, k: int, lo: int, hi: int) -> float:
        if self._upper is not None:
            return float(self._upper(k, lo, hi))
        return super().upper(k, lo, hi)

    def hash_parts(self) -> tuple[dict[str, Any], list[np.ndarray]]:
        return {"kind": self.kind, "key": self.key, "monotone": self._monotone}, []
