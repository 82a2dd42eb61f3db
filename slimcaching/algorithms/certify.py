"""``certify``: the strongest proven bound and the best placement within one time budget.

Every bound method and every primal method of the toolkit that fits the
instance runs in turn; the result is the lowest latency found, the highest
proven bound, and which method produced each.  Every bound is checked against
every feasible latency found (:func:`~slimcaching.formulations.bounds.check_bound`),
so an invalid bound raises instead of being reported.

Stages (shares of the budget ``S``; each stage also stops at the deadline):

1. capacity-free bound (instant) and ``best`` (5 %, at most 30 s);
2. bound with prices: the tightened level LP (safe bound from its duals) when
   the model has at most ``FULL_LP_ROWS`` rows, else the separable Lagrangian
   bound (:func:`~slimcaching.formulations.bounds.separable_bound`);
3. column generation by layer from those prices until 50 % of ``S`` (85 % for
   large models; with more than one expert size on small models: until 30 %,
   then the count decomposition of :mod:`~slimcaching.formulations.counts`
   until 50 %), price-and-branch over its columns;
4. MILP-LNS from the incumbent (15 % of ``S``; large models: the rest); when
   every neighbourhood is locally optimal early, HiGHS on the whole model
   (small models) with the rest of that share;
5. small models: HiGHS branch-and-bound on the tightened level model with the
   incumbent as objective cutoff, for the rest (its dual bound, and its
   incumbent if better).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..formulations.arrays import level_model_rows
from ..formulations.bounds import check_bound, separable_bound
from ..formulations.counts import count_generation
from ..formulations.decomposition import column_generation, lp_prices, price_and_branch
from ..formulations.direct import hard_deadline
from ..formulations.solve import OPTIMAL_GAP, capacity_free_bound
from ..formulations.tightenings import DEFAULT_TIGHTENINGS, tightened_capacities
from ..instances.model import Instance, Placement
from ..objective import empty_latency, latency
from ..result import versions
from ..solvers import SolveInterrupted
from .lns import FULL_LP_ROWS, MILP_PRICING_ROWS, cutoff_branch_and_bound, milp_lns
from .local_search import best

__all__ = ["Certificate", "certify", "DEFAULT_TIME_LIMIT"]

DEFAULT_TIME_LIMIT = 600.0
"""Seconds ``certify`` spends when no limit is given."""


@dataclass
class Certificate:
    """A placement with a proven lower bound on ``T(opt)``.

    Attributes
    ----------
    latency, bound, gap : float
        ``T(x)`` (evaluator), the best proven bound, ``(latency - bound) / latency``.
    status : str
        ``optimal`` (gap <= 1e-6) or ``gap`` (a proven gap remains).
    latency_method, bound_method : str
        Which method produced each.
    placement : Placement
    bounds, incumbents : list of dict
        Every bound / feasible latency found: ``method``, ``value``, ``time_s``.
    runtime_s, cpu_s : float
    info : dict
        Seed, time limit, tightenings, model size, per-stage details.
    """

    latency: float
    bound: float
    gap: float
    status: str
    latency_method: str
    bound_method: str
    placement: Placement
    bounds: list[dict] = field(default_factory=list)
    incumbents: list[dict] = field(default_factory=list)
    runtime_s: float = 0.0
    cpu_s: float = 0.0
    info: dict = field(default_factory=dict)

    def to_dict(self, instance: Instance) -> dict[str, Any]:
        """The JSON object ``slimcaching certify`` prints."""
        return {"instance": instance.name, "instance_hash": instance.content_hash(),
                "latency": self.latency, "bound": self.bound, "gap": self.gap, "status": self.status,
                "latency_method": self.latency_method, "bound_method": self.bound_method,
                "empty_latency": empty_latency(instance), "runtime_s": self.runtime_s, "cpu_s": self.cpu_s,
                "bounds": self.bounds, "incumbents": self.incumbents, "info": self.info,
                "placement": self.placement.to_cache(instance), "versions": versions()}


class _Ledger:
    """Every bound and incumbent found so far, cross-checked as they arrive."""

    def __init__(self, instance: Instance, t0: float):
        self.instance, self.t0 = instance, t0
        self.bounds: list[dict] = []
        self.incumbents: list[dict] = []
        self.placement: Placement = instance.empty_placement()
        self.add_incumbent("cloud", self.placement)

    def add_bound(self, method: str, value: float | None, **extra) -> None:
        if value is None or not math.isfinite(value):
            return
        for inc in self.incumbents:
            check_bound(value, method, inc["value"], inc["method"])
        self.bounds.append({"method": method, "value": float(value),
                            "time_s": time.perf_counter() - self.t0, **extra})

    def add_incumbent(self, method: str, placement: Placement | None) -> None:
        if placement is None or not placement.is_feasible(self.instance):
            return
        t = latency(self.instance, placement)
        for b in self.bounds:
            check_bound(b["value"], b["method"], t, method)
        if not self.incumbents or t < self.best_latency:
            self.placement = placement
        self.incumbents.append({"method": method, "value": t, "time_s": time.perf_counter() - self.t0})

    @property
    def best_latency(self) -> float:
        return min(i["value"] for i in self.incumbents)

    def best_bound(self) -> dict:
        return max(self.bounds, key=lambda b: b["value"])

    def best_incumbent(self) -> dict:
        return min(self.incumbents, key=lambda i: i["value"])


def certify(instance: Instance, *, time_limit: float | None = DEFAULT_TIME_LIMIT, seed: int | None = 0,
            tightenings: Any = DEFAULT_TIGHTENINGS) -> Certificate:
    """Prove a bound on ``T(opt)`` and find a placement, within ``time_limit`` seconds.

    Parameters
    ----------
    instance : Instance
    time_limit : float, optional
        Seconds for everything (default 600).
    seed : int, optional
        Seeds ``best`` and the LNS (``None``: 0).
    tightenings
        Of :mod:`slimcaching.formulations.tightenings` (default all).

    Returns
    -------
    Certificate

    Raises
    ------
    InputError
        A time limit that is not a number > 0.
    InvalidBound
        A bound above a feasible latency (a bug; see :mod:`.bounds`).
    SolveInterrupted
        Ctrl-C; its ``result`` is the certificate of what was proven and
        found so far (``info["stopped_by"] == "interrupt"``).

    Notes
    -----
    Guarantee: ``bound <= T(opt) <= latency``; each bound's proof is in the
    docstring of the method named by ``bound_method``.  Every HiGHS run
    ends by the deadline (:func:`~slimcaching.formulations.direct.hard_deadline`;
    large models in a child process that is killed), so the run time is
    ``time_limit`` plus one stage's step past it (measured in
    ``docs/formulations.md``).
    """
    if time_limit is None:
        time_limit = DEFAULT_TIME_LIMIT
    if not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise InputError("--time-limit", ("", f"must be a number > 0, got {time_limit!r}"))
    t0, c0 = time.perf_counter(), time.process_time()
    seed = 0 if seed is None else seed
    budget = float(time_limit)
    ledger = _Ledger(instance, t0)
    info: dict[str, Any] = {"seed": seed, "time_limit": budget, "tightenings": list(tightenings),
                            "stopped_by": None}
    ledger.add_bound("capacity-free", capacity_free_bound(instance))
    try:
        with hard_deadline(t0 + budget):  # every HiGHS run inside stops by then, and Ctrl-C stops it
            _stages(instance, ledger, info, t0, budget, seed, tightenings)
    except KeyboardInterrupt as exc:
        if type(exc) is not KeyboardInterrupt:  # SIGTERM and the like: nothing to keep
            raise
        info["stopped_by"] = "interrupt"
    inc, bnd = ledger.best_incumbent(), ledger.best_bound()
    gap = max(0.0, (inc["value"] - bnd["value"]) / inc["value"]) if inc["value"] > 0 else 0.0
    cert = Certificate(latency=inc["value"], bound=bnd["value"], gap=gap,
                       status="optimal" if gap <= OPTIMAL_GAP else "gap",
                       latency_method=inc["method"], bound_method=bnd["method"], placement=ledger.placement,
                       bounds=ledger.bounds, incumbents=ledger.incumbents, runtime_s=time.perf_counter() - t0,
                       cpu_s=time.process_time() - c0, info=info)
    if info["stopped_by"] == "interrupt":
        raise SolveInterrupted(cert)
    return cert


def _stages(instance: Instance, ledger: _Ledger, info: dict, t0: float, budget: float, seed: int,
            tightenings: Any) -> None:
    """The stages of :func:`certify`, recording every bound and incumbent in ``ledger`` as it goes."""
    deadline = t0 + budget

    def until(share: float) -> float:
        """Seconds left until ``share`` of the budget has elapsed (>= 0)."""
        return max(0.0, min(t0 + share * budget, deadline) - time.perf_counter())

    start = best(instance, seed=seed, time_limit=max(0.01, min(30.0, 0.05 * budget)))
    ledger.add_incumbent("best", start.placement)
    rows = level_model_rows(instance)
    per_layer = max((level_model_rows(instance, np.arange(instance.L) == l) for l in range(instance.L)), default=0)
    small = rows <= FULL_LP_ROWS
    info.update(level_rows=rows, max_layer_rows=per_layer, full_model=small)
    prices = None
    if small:
        lp, prices = lp_prices(instance, tightenings=tightenings, time_limit=max(0.01, until(0.3)))
        ledger.add_bound("level LP (tightened)", lp)
    else:
        cap = tightened_capacities(instance, tuple(tightenings))
        try:
            sep = separable_bound(instance, capacity=cap, upper=ledger.best_latency,
                                  time_limit=max(until(0.1), min(30.0, 0.05 * budget)))
            ledger.add_bound("separable Lagrangian", sep["bound"], rounds=sep["rounds"])
            prices = sep["prices"]
        except ValueError as exc:  # too many nodes to enumerate their subsets
            info["separable"] = str(exc)
    counts = small and len(np.unique(instance.expert_size)) > 1
    if until(0.5 if small else 0.85) > 0:
        pricing = "milp" if per_layer <= MILP_PRICING_ROWS else "lp"
        dw = column_generation(instance, starts=[ledger.placement], prices=prices,
                               time_limit=until(0.3 if counts else 0.5 if small else 0.85), pricing=pricing,
                               price_time=5.0 if pricing == "milp" else None, tightenings=tightenings)
        ledger.add_bound(f"Lagrangian (decomposition, {pricing} pricing)", dw.bound, rounds=dw.rounds)
        columns = dw.columns
        info["decomposition"] = {"rounds": dw.rounds, "columns": len(dw.columns), "converged": dw.converged,
                                 "pricing": pricing}
        if counts and until(0.5) > 0:
            cd = count_generation(instance, start=dw, starts=[ledger.placement], time_limit=until(0.5),
                                  pricing=pricing, price_time=5.0 if pricing == "milp" else None,
                                  tightenings=tightenings)
            ledger.add_bound("Lagrangian (count decomposition)", cd.bound, rounds=cd.rounds)
            columns = cd.columns
            info["count_decomposition"] = {"rounds": cd.rounds, "columns": len(cd.columns),
                                           "count_columns": len(cd.counts), "converged": cd.converged}
        placement, pb = price_and_branch(instance, columns, dw.capacity, cutoff=ledger.best_latency,
                                         time_limit=max(0.01, min(60.0, until(0.55 if small else 0.9))))
        ledger.add_incumbent("price-and-branch", placement)
        info["decomposition"]["price_and_branch"] = pb
    if until(0.7 if small else 1.0) > 0.5:
        placement, record = milp_lns(instance, ledger.placement, time_limit=until(0.7 if small else 1.0),
                                     seed=seed, width=2 if small else 1)
        ledger.add_incumbent("milp-lns", placement)
        info["lns"] = {k: v for k, v in record.items() if k != "history"}
        if record["interrupted"]:
            raise KeyboardInterrupt  # milp_lns kept its placement through Ctrl-C; now stop here too
        if record["finish"] is not None:
            ledger.add_bound("HiGHS branch-and-bound (after LNS)", record["finish"]["bound"])
    if small and until(1.0) > 0.5 and ledger.best_bound()["value"] < ledger.best_latency * (1 - OPTIMAL_GAP):
        _branch_and_bound(instance, ledger, tightenings, until(1.0), seed, info)


def _branch_and_bound(instance: Instance, ledger: _Ledger, tightenings: Any, seconds: float, seed: int,
                      info: dict) -> None:
    """:func:`~.lns.cutoff_branch_and_bound` below the best latency; records its bound and incumbent."""
    placement, bound, info["branch_and_bound"] = cutoff_branch_and_bound(instance, ledger.best_latency, seconds,
                                                                         seed=seed, tightenings=tightenings)
    ledger.add_incumbent("HiGHS branch-and-bound", placement)
    ledger.add_bound("HiGHS branch-and-bound" + (" (cutoff)" if info["branch_and_bound"]["status"] == "Infeasible"
                                                 else ""), bound)
