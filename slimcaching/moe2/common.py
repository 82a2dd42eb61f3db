"""What every MoE² method shares: the result type, the counting oracle, and the common start and finish.

Both the algorithms (:mod:`slimcaching.moe2.algorithms`) and the MILP
(:mod:`slimcaching.moe2.milp`) report through :func:`_finish`, so objective,
energy and feasibility always come from the family's one evaluator,
:func:`slimcaching.moe2.instance.evaluate_moe2`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..result import Status, _jsonable
from .instance import SELECTION_FORMAT, Moe2Instance, evaluate_moe2, ids_of, within

__all__ = ["Moe2Result", "CountingOracle", "NOTHING_FITS"]

MAX_CANDIDATES = 1 << 22
"""Most candidate subsets (summed over categories) the MILP and exhaustive search will list."""


def check_candidates(name: str, sizes: list[int], max_candidates: int) -> None:
    """Refuse (``InputError``) to list ``sum_k 2**sizes[k]`` subsets when that exceeds ``max_candidates``."""
    total = sum(1 << n for n in sizes)
    if total > max_candidates:
        raise InputError("--algorithm", ("", f"{name} would list {total:.3g} candidate subsets (more than "
                                             f"max_candidates = {max_candidates}); use dmo"))


NOTHING_FITS = ("no expert fits: every expert misses its category's latency budget or the energy budget, "
                "so the empty selection is the only feasible one")


# ------------------------------------------------------------------ result and oracle
@dataclass
class Moe2Result:
    """What every MoE² algorithm returns.

    Attributes
    ----------
    algorithm : str
    status : Status              ``optimal`` for exact methods (and whenever only the
                                 empty selection is feasible), ``heuristic`` for
                                 baselines, ``time_limit`` with the incumbent.
    selection : list of list of int   sorted expert ids, one list per category.
    objective : float            ``sum_k lambda_k q_k(S_k)`` (evaluator), maximised.
    energy : float               ``sum_k lambda_k sum_{i in S_k} e_i`` (evaluator).
    feasible : bool              both budgets hold (evaluator).
    oracle_calls : int           distinct evaluations of some ``q_k(S)``.
    runtime_s : float
    bound : float or None        proven upper bound on the optimum objective.
    params : dict
    seed : int or None
    info : dict                  what the method did (nodes, oracle queries, ...).
    message : str
    categories : list of str     category names (keys of ``selection`` in :meth:`to_dict`).
    instance : str               instance name.
    instance_hash : str
    """

    algorithm: str
    status: Status
    selection: list[list[int]]
    objective: float
    energy: float
    feasible: bool
    oracle_calls: int
    runtime_s: float
    bound: float | None = None
    params: dict = field(default_factory=dict)
    seed: int | None = None
    info: dict = field(default_factory=dict)
    message: str = ""
    categories: list[str] = field(default_factory=list)
    instance: str = ""
    instance_hash: str = ""

    @property
    def gap(self) -> float | None:
        """``(bound - objective) / bound`` when a positive bound exists."""
        if self.bound is None or self.bound <= 0:
            return None
        return max(0.0, (self.bound - self.objective) / self.bound)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object printed by ``slimcaching moe2 solve``; also a valid ``moe2-selection/1`` file."""
        names = self.categories or [str(k) for k in range(len(self.selection))]
        return _jsonable({
            "format": SELECTION_FORMAT, "instance": self.instance, "instance_hash": self.instance_hash,
            "algorithm": self.algorithm, "status": str(self.status),
            "selection": {n: list(s) for n, s in zip(names, self.selection)},
            "objective": self.objective, "energy": self.energy, "feasible": self.feasible,
            "oracle_calls": self.oracle_calls, "runtime_s": self.runtime_s, "bound": self.bound,
            "gap": self.gap, "params": self.params, "seed": self.seed, "info": self.info,
            "message": self.message,
        })


class CountingOracle:
    """Memoised access to ``q_k(S)`` (and the per-request energy ``eps_k(S)``) that counts evaluations.

    ``calls`` counts distinct ``(k, S)`` evaluated: what an expensive
    measurement of a mixture's quality costs.  Under per-query accounting one
    evaluation also routes the validation queries, which gives ``eps_k(S)``,
    so a subset costs one call whichever of the two is asked first.
    ``bound_calls`` counts distinct box bounds ``(k, lo, hi)`` asked of a model
    that is not proven monotone (a monotone model's bound is ``q_k(hi)``, one
    ordinary call).  ``queries`` counts every lookup, repeats included.

    Up to 16 experts the memo is a ``(C, 2**M)`` array; beyond, a dictionary.
    """

    def __init__(self, instance: Moe2Instance):
        self.instance = instance
        self.model = instance.quality
        self.routed = instance.energy_accounting == "per-query" and self.model.routes_per_query
        self.assume_monotone = False
        self.calls = 0
        self.bound_calls = 0
        self.queries = 0
        self._dense = instance.M <= 16
        if self._dense:
            self._seen = np.zeros((instance.C, 1 << instance.M), dtype=bool)
            self._val = np.zeros((instance.C, 1 << instance.M))
            self._en = np.zeros((instance.C, 1 << instance.M)) if self.routed else None
        else:
            self._memo: list[dict[int, tuple[float, float]]] = [{} for _ in range(instance.C)]
        self._bounds: dict[tuple[int, int, int], float] = {}

    def _compute(self, k: int, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Evaluate distinct unseen ``masks`` of category ``k`` (counted)."""
        self.calls += len(masks)
        vals = self.model.values(k, masks)
        en = self.model.usage(k, masks) @ self.instance.energy if self.routed else None
        return vals, en

    def many(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``q_k`` of every mask in ``masks`` (vectorised, counted)."""
        return self._lookup(k, masks)[0]

    def many_energy(self, k: int, masks: np.ndarray) -> np.ndarray:
        """``eps_k`` (per request, without ``lambda_k``) of every mask, under the instance's accounting."""
        if not self.routed:
            return self.instance.mask_energy(np.asarray(masks, dtype=np.int64))
        return self._lookup(k, masks)[1]

    def _lookup(self, k: int, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        masks = np.asarray(masks, dtype=np.int64).reshape(-1)
        self.queries += len(masks)
        if self._dense:
            new = np.unique(masks[~self._seen[k, masks]])
            if len(new):
                vals, en = self._compute(k, new)
                self._val[k, new] = vals
                if en is not None:
                    self._en[k, new] = en
                self._seen[k, new] = True
            return self._val[k, masks], (self._en[k, masks] if self.routed else None)
        memo = self._memo[k]
        new = np.array(sorted({int(m) for m in masks if int(m) not in memo}), dtype=np.int64)
        if len(new):
            vals, en = self._compute(k, new)
            for j, m in enumerate(new.tolist()):
                memo[m] = (float(vals[j]), float(en[j]) if en is not None else 0.0)
        got = [memo[int(m)] for m in masks]
        return (np.array([g[0] for g in got], dtype=np.float64),
                np.array([g[1] for g in got], dtype=np.float64) if self.routed else None)

    def __call__(self, k: int, mask: int) -> float:
        if self._dense:
            self.queries += 1
            if not self._seen[k, mask]:
                self._lookup(k, np.array([mask]))
                self.queries -= 1
            return float(self._val[k, mask])
        return float(self._lookup(k, np.array([mask]))[0][0])

    def energy(self, k: int, mask: int) -> float:
        """``eps_k(S)`` of one mask (see :meth:`many_energy`)."""
        return float(self.many_energy(k, np.array([mask]))[0])

    def upper(self, k: int, lo: int, hi: int) -> float:
        """A bound on ``max { q_k(T) : lo <= T <= hi }``: ``q_k(hi)`` when the model is proven monotone.

        With ``assume_monotone`` set, ``q_k(hi)`` is returned for any model: the
        reading of a paper that takes monotonicity for granted, not a bound.
        """
        if self.model.monotone or self.assume_monotone:
            return self(k, hi)
        self.queries += 1
        key = (k, int(lo), int(hi))
        b = self._bounds.get(key)
        if b is None:
            b = self._bounds[key] = float(self.model.upper(k, int(lo), int(hi)))
            self.bound_calls += 1
        return b


def _no_params(name: str, params: dict, valid: tuple[str, ...] = ()) -> None:
    if params:
        raise InputError("--param", ("", f"unknown parameter(s) {', '.join(sorted(params))} for {name}; "
                                         f"valid: {', '.join(valid) if valid else 'none'}"))


def _check_time_limit(time_limit: Any) -> None:
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and not isinstance(time_limit, bool)
                                       and time_limit > 0):
        raise InputError("--time-limit", ("", f"must be a number > 0, got {time_limit!r}"))


def _finish(instance: Moe2Instance, masks: Any, *, algorithm: str, status: Status, t0: float,
            oracle: CountingOracle | None, params: dict | None = None, seed: int | None = None,
            bound: float | None = None, info: dict | None = None, message: str = "") -> Moe2Result:
    """Build the result with the evaluator's numbers (the only way algorithms report)."""
    masks = np.asarray(masks, dtype=np.int64)
    ev = evaluate_moe2(instance, masks)
    info = dict(info or {})
    if oracle is not None:
        info["oracle_queries"] = oracle.queries
        if oracle.bound_calls:
            info["bound_calls"] = oracle.bound_calls
    return Moe2Result(
        algorithm=algorithm, status=Status(status), selection=[ids_of(int(m)) for m in masks],
        objective=ev.objective, energy=ev.energy, feasible=ev.feasible,
        oracle_calls=0 if oracle is None else oracle.calls, runtime_s=time.perf_counter() - t0,
        bound=bound, params=dict(params or {}), seed=seed, info=info, message=message,
        categories=list(instance.category_names), instance=instance.name, instance_hash=instance.content_hash(),
    )


def _fitting(instance: Moe2Instance) -> np.ndarray:
    """``int64 (C,)``: experts fitting category ``k``'s latency budget whose energy alone fits ``E``."""
    allowed = instance.allowed_masks()
    out = np.zeros(instance.C, dtype=np.int64)
    for k in range(instance.C):
        for i in ids_of(int(allowed[k])):
            if within(instance.weight[k] * instance.energy[i], instance.energy_budget):
                out[k] |= 1 << i
    return out


def _usable(instance: Moe2Instance) -> np.ndarray:
    """``int64 (C,)``: experts that can be in a feasible pool of category ``k``.

    Pool accounting: those of :func:`_fitting` (a pool costs at least each
    member).  Per-query accounting: every expert within the latency budget,
    since a rarely routed expert may join a pool that fits although it does
    not fit alone.
    """
    if instance.energy_accounting == "per-query" and instance.quality.routes_per_query:
        return instance.allowed_masks()
    return _fitting(instance)


def _trivial(instance: Moe2Instance, name: str, t0: float, params: dict, seed: int | None) -> Moe2Result | None:
    """The result when nothing fits (empty selection, optimal), else ``None``."""
    if np.any(_fitting(instance)):  # else every pool costs more than E: each request runs some member
        return None
    oracle = CountingOracle(instance)
    value = sum(instance.weight[k] * oracle(k, 0) for k in range(instance.C))
    return _finish(instance, np.zeros(instance.C, dtype=np.int64), algorithm=name, status=Status.OPTIMAL, t0=t0,
                   oracle=oracle, params=params, seed=seed, bound=float(value), info={"nothing_fits": True},
                   message=NOTHING_FITS)


def _begin(instance: Moe2Instance, name: str, params: dict, time_limit: Any, seed: int | None, *,
           valid: tuple[str, ...] = (), **record: Any) -> tuple[float, dict, Moe2Result | None]:
    """Common start of every MoE² method: check the options, start the clock, and
    return ``(t0, recorded parameters, the nothing-fits result or None)``."""
    _no_params(name, params, valid)
    _check_time_limit(time_limit)
    t0 = time.perf_counter()
    record = {"time_limit": time_limit, **record}
    return t0, record, _trivial(instance, name, t0, record, seed)
