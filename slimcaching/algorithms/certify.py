"""``certify``: the strongest proven bound and the best placement within one time budget.

Every bound method and every primal method of the toolkit that fits the
instance runs in turn; the result is the lowest latency found, the highest
proven bound, and which method produced each.  Every bound is checked against
every feasible latency found (:func:`~slimcaching.formulations.bounds.check_bound`),
so an invalid bound raises instead of being reported.

Stages (shares of the budget ``S``; each stage also stops at the deadline):

1. capacity-free bound (instant), the caller's ``start`` placement if any,
   and ``best`` (5 %, at most 30 s);
2. bound with prices: the tightened level LP (safe bound from its duals) when
   the model has at most ``FULL_LP_ROWS`` rows, else the separable Lagrangian
   bound (:func:`~slimcaching.formulations.bounds.separable_bound`, until it
   converges or 15 % of ``S``, at most 120 s);
3. column generation by layer from those prices until 50 % of ``S`` (85 % for
   large models; with more than one expert size on small models: until 30 %,
   then the count decomposition of :mod:`~slimcaching.formulations.counts`
   until 50 %, or until its bound has not risen for ``STALL_ROUNDS``
   rounds); where layers are priced as MILPs, each layer priced again at
   perturbed prices (:func:`~slimcaching.formulations.decomposition.perturbed_columns`,
   at most 3 % of ``S``, before the count decomposition); price-and-branch
   over all these columns;
4. small models, while the gap is open: RINS (:func:`_rins`: HiGHS on the
   elements where the incumbent and the tightened LP differ, until 65 %);
5. MILP-LNS from the incumbent (until 75 %, or until no neighbourhood is
   left: each solved without a gain or out of its time twice; on small
   models with more than one expert size, also until :data:`LNS_STALL` of
   its sub-MILPs in a row improve nothing; large models: the rest);
6. small models: HiGHS branch-and-bound on the tightened level model with the
   incumbent as objective cutoff, for the rest, in one run from wherever the
   LNS ended (its dual bound, and its incumbent if better).

A run can end before ``S``: when the gap is closed, or, on large models,
when the LNS has no neighbourhood left (``mixed-qwen1.5-moe-a2.7b-wifi-jetson``
after 252-256 s, ``mixed-olmoe-1b-7b-wifi-rtx`` after 314-326 s, of 600 s; more
time per sub-MILP improved neither placement, docs/performance.md).

Small models with few count vectors and small layers (their product at most
:data:`~slimcaching.formulations.enumeration.ENUMERATION_WORK`), and, when
``S`` is at least :data:`~slimcaching.formulations.enumeration.LONG_BUDGET`,
those with at most :data:`~slimcaching.formulations.enumeration.LONG_VECTORS`
count vectors that all have exact count tables
(``info["long_enumeration"]``), are solved exactly by
count enumeration (:mod:`~slimcaching.formulations.enumeration`) instead of
the count decomposition: the layer decomposition until 30 %, price-and-branch
until 35 %, RINS until 40 %, the LNS until 45 % (a low incumbent fixes more
count vectors) or until :data:`LNS_STALL` of its sub-MILPs in a
row improve nothing, the enumeration from the decomposition's prices and the
incumbent until 95 % (first below a 0.1 % target, :data:`ENUMERATION_RUNG`,
then, once that is proven, toward the optimum), and branch-and-bound for the
rest if the gap is still open.  On the long route ``best`` gets
:data:`LONG_ROUTE_BEST` seconds and the enumeration runs to the end.

**Target gap** (``gap=G``, default 0): the run stops once the certified gap
is at most ``G``, and the exact stages search only below the target
``U (1 - G)`` (``U`` the best latency so far): branch-and-bound takes it
as its objective cutoff, the count enumeration fixes vectors and cuts off
its outer knapsack against it.  When either proves there is nothing below
the target, ``T(opt) >= U (1 - G)``: the gap ``G`` is proven with a tree
that prunes every node within ``G`` of ``U``, much smaller than the tree
that proves the optimum.  Measured on ``mixed-phi-3.5-moe-wifi-rtx-L8``
(HiGHS alone on the tightened model, one thread, two runs side by side):
nothing 0.09 % below the optimum, proven in 249 s (3 316 nodes); nothing
0.05 % below, in 244 s (5 079 nodes); the optimum itself was not proven in
620 s (17 227 nodes).  The bound reported is the target's, so a run with
``G > 0`` does not say how far below ``G`` the true gap is.

**Work mode** (``work_limit=W``): the same stages in the same order, each
stopped by a count instead of a share of the clock (:func:`work_limits`:
column-generation rounds, HiGHS branch-and-bound nodes per MILP, LNS steps,
subgradient rounds, all proportional to ``W``; ``best`` and the LP run to the
end).  HiGHS runs single-threaded with a fixed seed, so the certificate is
the same on a fast or a loaded machine.  ``time_limit`` stays the hard wall
on top; a stage the wall clock cut is listed in ``info["wall_cut"]`` (then
the run is not reproducible, and ``info["reproducible"]`` says so).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..fileio import content_hash
from ..formulations.arrays import level_model_rows
from ..formulations.bounds import check_bound, separable_bound, target_cutoff
from ..formulations.counts import STALL_ROUNDS, count_generation
from ..formulations.decomposition import column_generation, lp_prices, perturbed_columns, price_and_branch
from ..formulations.direct import hard_deadline
from ..formulations.enumeration import (ENUMERATION_WORK, LONG_BUDGET, LONG_VECTORS, count_enumeration,
                                        count_vectors, tabulated)
from ..formulations.solve import OPTIMAL_GAP, capacity_free_bound
from ..formulations.tightenings import DEFAULT_TIGHTENINGS, tightened_capacities
from ..instances.model import Instance, Placement
from ..objective import empty_latency, latency
from ..result import versions
from ..solvers import SolveInterrupted
from .lns import FULL_LP_ROWS, MILP_PRICING_ROWS, cutoff_branch_and_bound, milp_lns, rins
from .local_search import best

__all__ = ["Certificate", "certify", "check_start", "DEFAULT_TIME_LIMIT", "ENUMERATION_RUNG", "LNS_STALL",
           "LONG_ROUTE_BEST", "WORK_UNIT", "work_limits"]

DEFAULT_TIME_LIMIT = 600.0
"""Seconds ``certify`` spends when no limit is given."""

LNS_STALL = 10
"""Before a count enumeration, and before branch-and-bound on a small model with more than one expert
size (the count decomposition's route), the LNS stops after this many sub-MILPs in a row that improved
nothing, and its time goes to that exact stage.  Measured (library calls, 600 s, seed 0): on
``mixed-mixtral-8x7b-5g-mec`` the only improving step of the LNS was its first of 55 (0.1 s of 172 s),
and on ``mixed-mixtral-8x7b-wifi-jetson`` none of 54 (169 s) improved RINS's placement.  On
``mixed-phi-3.5-moe-wifi-rtx-L8`` the LNS without the rule ran until 162-210 s (37-48 steps, 1-2 of
them gains) and branch-and-bound had 391 s: gap 0.318 %; with it the LNS stopped at 102-104 s (19 steps,
one gain) and branch-and-bound had 496-498 s: gap 0.0947 % and 0.1077 % in two runs (the optimum, proven
given 1 800 s, is the placement all three found).  On ``mixed-phi-3.5-moe-5g-device`` it gives 0.053 % in
two runs (0.065-0.161 % before).  Models with one expert size keep the LNS as it was (not measured with
the rule; on ``paper-mixtral-8x7b-5g-device-bf16`` the LNS's placement was the best of a 600 s run)."""

LONG_ROUTE_BEST = 5.0
"""Seconds of ``best`` on the long-enumeration route (``info["long_enumeration"]``); there the outer
knapsack also keeps the last 5 % of the budget instead of a branch-and-bound run from scratch.
Measured on the two files of that route (600 s, seed 0): ``best`` returned 1.986837 on
``mixed-mixtral-8x7b-5g-mec`` after 30 s (the empty placement, 2.508126, after 5 s) and 0.807834 on
``mixed-mixtral-8x7b-wifi-jetson``, where price-and-branch found 0.773104 and 0.364337 3 s later; the
last 30 s of branch-and-bound on the level model ended at 0.769291 and 0.359946, below the
enumeration's bounds (0.771619, 0.360743).  Both shares go to the outer knapsack instead."""

ENUMERATION_RUNG = 1e-3
"""When ``certify`` aims lower than this gap (the default, the optimum), the count enumeration first
searches below this target only (``target_gap``), and searches for the optimum with the time left once
that is proven.  Its outer knapsack's tree is then a fraction of the full one.  Measured at 600 s
(default options, one other job beside each run): ``mixed-mixtral-8x7b-wifi-jetson`` ends at 0.244 % and
0.254 % (two runs) instead of 0.777-0.800 % (the target not reached: the bound is the pruned tree's), and
``mixed-mixtral-8x7b-5g-mec`` proves 0.1 % at 134 s, where the full search needed 463-512 s for 0.0999 %;
the search for the optimum after it ended below the rung's bound (``docs/formulations.md``, "A target
gap").  Branch-and-bound on the
level model keeps one run toward the optimum: the same rung there (measured, 600 s) kept
``mixed-llama-4-scout-wifi-jetson-L12`` optimal but proves 0.1 % only from an incumbent within about
0.05 % of the optimum, where the default run already ends near it; on ``mixed-phi-3.5-moe-wifi-rtx-L8``
from RINS's 0.118904 (0.083 % above the optimum) it ended at 0.158 %, against 0.095-0.108 % for the
default runs from 0.118861 (``docs/formulations.md``, "A target gap")."""

WORK_UNIT: dict[str, int] = {
    "separable_rounds": 1000,  # subgradient rounds of the separable Lagrangian bound (large models)
    "cg_rounds": 40,          # pricing rounds of the layer decomposition
    "perturb_rounds": 40,     # rounds of pricing at perturbed prices, for price-and-branch
    "count_rounds": 40,       # pricing rounds of the count decomposition
    "pricing_nodes": 200,     # branch-and-bound nodes of each pricing MILP
    "pab_nodes": 2000,        # branch-and-bound nodes of price-and-branch
    "rins_nodes": 1000,       # branch-and-bound nodes of the RINS sub-MILP (small models)
    "lns_steps": 60,          # LNS sub-MILPs
    "lns_nodes": 200,         # branch-and-bound nodes of each LNS sub-MILP
    "bb_nodes": 5000,         # branch-and-bound nodes on the whole model (small models)
    "enum_nodes": 20000,      # branch-and-bound nodes of the count enumeration's outer MILP
}
"""The caps of ``work_limit=1``; ``work_limit=W`` multiplies each by ``W`` (at least 1)."""


def work_limits(work_limit: float) -> dict[str, int]:
    """The per-stage caps of ``certify(..., work_limit=W)``: :data:`WORK_UNIT` times ``W``, rounded, >= 1."""
    return {k: max(1, int(round(v * float(work_limit)))) for k, v in WORK_UNIT.items()}


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
        Wall seconds; CPU seconds of this process and of the HiGHS child
        processes it waited for (models of at least
        :data:`~slimcaching.formulations.direct.ISOLATE_ROWS` rows are solved in one).
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


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def check_start(instance: Instance, start: Placement, file: str = "start") -> None:
    """Raise :class:`InputError` (naming ``file``) unless ``start`` is a placement of ``instance`` that fits."""
    shape = (instance.N, instance.L, instance.max_experts)
    if not isinstance(start, Placement) or start.x.shape != shape:
        raise InputError(file, ("$.cache", f"must be a placement of instance {instance.name!r} "
                                           f"(N, L, Emax) = {shape}"))
    over = start.over_capacity(instance)
    if over:
        n, used = over[0], start.storage_used(instance)[over[0]]
        raise InputError(file, (f"$.cache.{instance.node_names[n]}",
                                f"caches {int(used)} {instance.size_unit}, more than the node's capacity "
                                f"{int(instance.capacity[n])} {instance.size_unit}"))


def certify(instance: Instance, *, time_limit: float | None = DEFAULT_TIME_LIMIT, seed: int | None = 0,
            tightenings: Any = DEFAULT_TIGHTENINGS, work_limit: float | None = None,
            start: Placement | None = None, gap: float = 0.0) -> Certificate:
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
    work_limit : float, optional
        Work mode: every stage stops at a count (:func:`work_limits`),
        recorded in ``info["work_limits"]``; the result does not depend on
        machine speed unless ``time_limit`` cut a stage (``info["wall_cut"]``).
    start : Placement, optional
        A feasible placement to start from: the one deployed today, or
        another method's.  It is an incumbent from the outset (method
        ``"start"``, checked against every bound like any other), so the
        certificate's latency is never above its latency; its own proven gap
        is ``info["start_gap"]``, against the final bound, and its hash
        ``info["start_hash"]`` (of its ``cache``, as in the file).  The stages
        after ``best`` start from the best placement so far (its layer
        patterns become columns; RINS, the LNS, the count enumeration and
        branch-and-bound start from it or below it).
    gap : float in [0, 1), optional
        Target gap (module docstring): stop once the certified gap is at
        most this, searching only for placements more than this fraction
        below the incumbent (default 0: prove the optimum).

    Returns
    -------
    Certificate

    Raises
    ------
    InputError
        A time limit or work limit that is not a number > 0, a ``gap`` outside
        ``[0, 1)``, or a ``start``
        that is not a placement of ``instance`` or does not fit its capacities.
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
    if work_limit is not None and not (isinstance(work_limit, (int, float)) and not isinstance(work_limit, bool)
                                       and work_limit > 0 and math.isfinite(work_limit)):
        raise InputError("--work-limit", ("", f"must be a number > 0, got {work_limit!r}"))
    if not (isinstance(gap, (int, float)) and not isinstance(gap, bool) and 0 <= gap < 1):
        raise InputError("--gap", ("", f"must be a number in [0, 1), got {gap!r}"))
    if start is not None:
        check_start(instance, start)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    seed = 0 if seed is None else seed
    budget = float(time_limit)
    ledger = _Ledger(instance, t0)
    info: dict[str, Any] = {"seed": seed, "time_limit": budget, "tightenings": list(tightenings),
                            "work_limit": work_limit, "gap_target": float(gap), "stopped_by": None}
    work = None if work_limit is None else work_limits(work_limit)
    if work is not None:
        info["work_limits"] = work
        info["wall_cut"] = []
    ledger.add_bound("capacity-free", capacity_free_bound(instance))
    if start is not None:
        ledger.add_incumbent("start", start)
        info["start_latency"] = ledger.incumbents[-1]["value"]
        info["start_hash"] = content_hash({"cache": start.to_cache(instance)})  # which placement it was
    try:
        with hard_deadline(t0 + budget):  # every HiGHS run inside stops by then, and Ctrl-C stops it
            _stages(instance, ledger, info, t0, budget, seed, tightenings, work, float(gap))
    except KeyboardInterrupt as exc:
        if isinstance(exc, SolveInterrupted):  # an inner method's, already holding its result
            raise
        info["stopped_by"] = "interrupt"
    if work is not None:  # every stage ended at its cap, none at (or skipped near) the deadline
        info["reproducible"] = (info["stopped_by"] is None and not info["wall_cut"]
                                and time.perf_counter() < t0 + budget - 0.5)
    inc, bnd = ledger.best_incumbent(), ledger.best_bound()
    gap = max(0.0, (inc["value"] - bnd["value"]) / inc["value"]) if inc["value"] > 0 else 0.0
    if "start_latency" in info:  # how far the caller's own placement is from the optimum, proven
        s_lat = info["start_latency"]
        info["start_gap"] = max(0.0, (s_lat - bnd["value"]) / s_lat) if s_lat > 0 else 0.0
    cert = Certificate(latency=inc["value"], bound=bnd["value"], gap=gap,
                       status="optimal" if gap <= OPTIMAL_GAP else "gap",
                       latency_method=inc["method"], bound_method=bnd["method"], placement=ledger.placement,
                       bounds=ledger.bounds, incumbents=ledger.incumbents, runtime_s=time.perf_counter() - t0,
                       cpu_s=_cpu_seconds() - c0, info=info)
    if info["stopped_by"] == "interrupt":
        raise SolveInterrupted(cert)
    return cert


def _stages(instance: Instance, ledger: _Ledger, info: dict, t0: float, budget: float, seed: int,
            tightenings: Any, work: dict | None = None, target: float = 0.0) -> None:
    """The stages of :func:`certify`, recording every bound and incumbent in ``ledger`` as it goes."""
    deadline = t0 + budget

    def closed() -> bool:
        return _closed(ledger, target)

    def until(share: float) -> float:
        """Seconds left until ``share`` of the budget has elapsed (>= 0); in work mode until the wall deadline."""
        end = deadline if work is not None else min(t0 + share * budget, deadline)
        return max(0.0, end - time.perf_counter())

    def cap(key: str) -> int | None:
        """The work cap ``key`` (None in time mode)."""
        return None if work is None else work[key]

    def stage_done(name: str) -> None:
        """Work mode: note a stage that the wall clock (not its work cap) ended."""
        if work is not None and time.perf_counter() >= deadline and name not in info["wall_cut"]:
            info["wall_cut"].append(name)

    rows = level_model_rows(instance)
    per_layer = max((level_model_rows(instance, np.arange(instance.L) == l) for l in range(instance.L)), default=0)
    small = rows <= FULL_LP_ROWS
    info.update(level_rows=rows, max_layer_rows=per_layer, full_model=small)
    vectors = count_vectors(instance, tightenings) if small else None
    info["count_vectors"] = vectors
    # the vectors times the rows each vector's MILP would have, tables or not: with many vectors the
    # outer knapsack keeps 10 000-19 000 of them, and whether it beats branch-and-bound on the model
    # depends on the budget and the vector count (the LONG_BUDGET rule below)
    enumerable = small and vectors * max(per_layer, 1) <= ENUMERATION_WORK
    long_route = (small and not enumerable and budget >= LONG_BUDGET and vectors <= LONG_VECTORS
                  and tabulated(instance, tightenings))
    if long_route:
        # every vector costed by a table, and 600 s or more: on mixed-mixtral-8x7b-5g-mec the outer knapsack
        # ends at 0.0999 % (0.114 % before the LNS's stall rule) where branch-and-bound ends at 0.376-0.414 %,
        # and it proves the optimum in 1800 s; on mixed-mixtral-8x7b-wifi-jetson (node-set tables) 0.800 %
        # against 1.04-1.07 %
        enumerable = True
        info["long_enumeration"] = True
    best_time = min(LONG_ROUTE_BEST, 30.0, 0.05 * budget) if long_route else min(30.0, 0.05 * budget)
    start = best(instance, seed=seed, time_limit=max(0.01, best_time) if work is None else until(1.0))
    stage_done("best")
    ledger.add_incumbent("best", start.placement)
    prices, lp_x = None, None
    if small:
        lp, prices, lp_x = lp_prices(instance, tightenings=tightenings, time_limit=max(0.01, until(0.3)), point=True)
        stage_done("level LP")
        ledger.add_bound("level LP (tightened)", lp)
    else:
        capacity = tightened_capacities(instance, tuple(tightenings))
        try:
            sep = separable_bound(instance, capacity=capacity, upper=ledger.best_latency,
                                  time_limit=max(until(0.1), min(120.0, 0.15 * budget)) if work is None else until(1),
                                  **({} if work is None else {"rounds": work["separable_rounds"]}))
            stage_done("separable Lagrangian")
            ledger.add_bound("separable Lagrangian", sep["bound"], rounds=sep["rounds"])
            prices = sep["prices"]
        except ValueError as exc:  # too many nodes to enumerate their subsets
            info["separable"] = str(exc)
    # with an enumeration ahead, the count decomposition's bound would only be superseded
    counts = small and not enumerable and len(np.unique(instance.expert_size)) > 1
    rins_end, lns_end = (0.4, 0.45) if enumerable else (0.65, 0.75)
    if until(0.5 if small else 0.85) > 0:
        pricing = "milp" if per_layer <= MILP_PRICING_ROWS else "lp"
        price_time = 5.0 if pricing == "milp" and work is None else None
        dw_end = 0.3 if counts or enumerable else 0.5 if small else 0.85
        try:
            dw = column_generation(instance, starts=[ledger.placement], prices=prices, time_limit=until(dw_end),
                                   pricing=pricing,
                                   price_time=price_time, tightenings=tightenings,
                                   node_limit=cap("pricing_nodes"), **_rounds(cap("cg_rounds")))
        except KeyboardInterrupt as exc:  # keep the rounds proven before Ctrl-C (DeepSeek-V3: minutes of them)
            part = getattr(exc, "decomposition", None)
            if part is not None:
                ledger.add_bound(f"Lagrangian (decomposition, {pricing} pricing)", part.bound, rounds=part.rounds)
            raise
        stage_done("layer decomposition")
        ledger.add_bound(f"Lagrangian (decomposition, {pricing} pricing)", dw.bound, rounds=dw.rounds)
        columns = dw.columns
        info["decomposition"] = {"rounds": dw.rounds, "columns": len(dw.columns), "converged": dw.converged,
                                 "pricing": pricing, "lp_solver": dw.lp_solver,
                                 "pdlp_fallbacks": dw.pdlp_fallbacks}
        extra = []
        if pricing == "milp" and until(dw_end + 0.03) > 0:
            extra = perturbed_columns(instance, dw.prices, dw.capacity, known=dw.columns, seed=seed,
                                      price_time=price_time, node_limit=cap("pricing_nodes"),
                                      time_limit=until(dw_end + 0.03 if work is None else 1.0),
                                      tightenings=tightenings, **({} if work is None else
                                                                  {"rounds": work["perturb_rounds"]}))
            stage_done("perturbed pricing")
            info["decomposition"]["perturbed_columns"] = len(extra)
        if counts and until(0.5) > 0:
            cd = count_generation(instance, start=dw, starts=[ledger.placement], time_limit=until(0.5),
                                  pricing=pricing, price_time=price_time, tightenings=tightenings,
                                  node_limit=cap("pricing_nodes"), stall_rounds=STALL_ROUNDS,
                                  **_rounds(cap("count_rounds")))
            stage_done("count decomposition")
            ledger.add_bound("Lagrangian (count decomposition)", cd.bound, rounds=cd.rounds)
            columns = cd.columns
            info["count_decomposition"] = {"rounds": cd.rounds, "columns": len(cd.columns),
                                           "count_columns": len(cd.counts), "converged": cd.converged}
        pab_end = 0.35 if enumerable else 0.55 if small else 0.9
        placement, pb = price_and_branch(instance, columns + extra, dw.capacity, cutoff=ledger.best_latency,
                                         time_limit=max(0.01, until(1.0) if work is not None else
                                                        min(60.0, until(pab_end))),
                                         node_limit=cap("pab_nodes"))
        stage_done("price-and-branch")
        ledger.add_incumbent("price-and-branch", placement)
        info["decomposition"]["price_and_branch"] = pb
        prices = dw.prices
    if small and lp_x is not None and until(rins_end) > 0.5 and not closed():
        _rins(instance, ledger, lp_x, until(rins_end), seed, info, cap("rins_nodes"), tightenings)
        stage_done("rins")
    if until(lns_end if small else 1.0) > 0.5 and not closed():
        # no whole-model finish inside the LNS: the branch-and-bound stage below is that run, and one
        # continuous run from the LNS's end proves more than two restarts of the same tree
        placement, record = milp_lns(instance, ledger.placement, time_limit=until(lns_end if small else 1.0),
                                     seed=seed, width=2 if small else 1, finish_rows=0,
                                     stall_steps=LNS_STALL if enumerable or counts else None,
                                     **({} if work is None else {"max_steps": work["lns_steps"],
                                                                 "sub_nodes": work["lns_nodes"]}))
        stage_done("milp-lns")
        ledger.add_incumbent("milp-lns", placement)
        info["lns"] = {k: v for k, v in record.items() if k != "history"}
        if record["interrupted"]:
            raise KeyboardInterrupt  # milp_lns kept its placement through Ctrl-C; now stop here too
    # on the long route the outer knapsack keeps the last 5 % too: branch-and-bound from scratch on the
    # level model never reached the enumeration's bound there (LONG_ROUTE_BEST)
    enum_end = 1.0 if long_route else 0.95
    if enumerable and prices is not None and until(enum_end) > 0.5 and not closed():
        proven = True
        if target < ENUMERATION_RUNG and not _closed(ledger, ENUMERATION_RUNG):
            # first only below the rung's target; toward the caller's with what is left once it is proven
            _enumerate(instance, ledger, prices, until(enum_end), info, cap("enum_nodes"), tightenings,
                       ENUMERATION_RUNG, key="count_enumeration_rung")
            proven = _closed(ledger, ENUMERATION_RUNG)
        if proven and until(enum_end) > 0.5 and not closed():
            _enumerate(instance, ledger, prices, until(enum_end), info, cap("enum_nodes"), tightenings, target)
        stage_done("count enumeration")
    if small and until(1.0) > 0.5 and not closed():
        _branch_and_bound(instance, ledger, tightenings, until(1.0), seed, info, cap("bb_nodes"), target)
        stage_done("branch-and-bound")


def _closed(ledger: _Ledger, target: float = 0.0) -> bool:
    """Whether the best bound meets the best latency (gap at most ``OPTIMAL_GAP``, or the target gap)."""
    return ledger.best_bound()["value"] >= ledger.best_latency * (1 - max(OPTIMAL_GAP, target))


def _rins(instance: Instance, ledger: _Ledger, lp_x: np.ndarray, seconds: float, seed: int, info: dict,
          node_limit: int | None, tightenings: Any) -> None:
    """:func:`~.lns.rins` from the incumbent; its placement, if any, goes through the ledger's checks."""
    placement, info["rins"] = rins(instance, ledger.placement, lp_x, time_limit=seconds, seed=seed,
                                   node_limit=node_limit, tightenings=tightenings)
    ledger.add_incumbent("RINS", placement)


def _enumerate(instance: Instance, ledger: _Ledger, prices: np.ndarray, seconds: float, info: dict,
               node_limit: int | None, tightenings: Any, target: float = 0.0,
               key: str = "count_enumeration") -> None:
    """:func:`~slimcaching.formulations.enumeration.count_enumeration` from the incumbent; records both sides
    (its details in ``info[key]``)."""
    r = count_enumeration(instance, prices, start=ledger.placement, time_limit=seconds, tightenings=tightenings,
                          node_limit=node_limit, target_gap=target)
    ledger.add_incumbent("count enumeration", r.placement)
    ledger.add_bound("count enumeration", r.bound)
    info[key] = {"vectors": r.vectors, "solved": r.solved, "kept": r.kept, "complete": r.complete,
                 "table_layers": sum(layer["table"] for layer in r.info["layers"]),
                 "proved": r.proved, "start_bound": r.start_bound, "outer": r.info.get("outer"),
                 "stopped": r.info.get("stopped"), "wall_s": r.info["wall_s"], "target_gap": target}


def _rounds(cap: int | None) -> dict:
    """``max_rounds`` of a column generation in work mode (nothing in time mode)."""
    return {} if cap is None else {"max_rounds": cap}


def _branch_and_bound(instance: Instance, ledger: _Ledger, tightenings: Any, seconds: float, seed: int,
                      info: dict, node_limit: int | None = None, target: float = 0.0) -> None:
    """:func:`~.lns.cutoff_branch_and_bound` below the best latency (less the target gap); records its bound
    and incumbent."""
    cutoff = target_cutoff(ledger.best_latency, target)
    placement, bound, info["branch_and_bound"] = cutoff_branch_and_bound(instance, cutoff, seconds,
                                                                         seed=seed, tightenings=tightenings,
                                                                         node_limit=node_limit)
    ledger.add_incumbent("HiGHS branch-and-bound", placement)
    ledger.add_bound("HiGHS branch-and-bound" + (" (cutoff)" if info["branch_and_bound"]["status"] == "Infeasible"
                                                 else ""), bound)
