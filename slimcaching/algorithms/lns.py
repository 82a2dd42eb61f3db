"""MILP-based large-neighbourhood search, and ``lns``, the flagship built on it.

:func:`milp_lns` starts from a feasible placement and repeatedly frees a
*neighbourhood* that HiGHS re-optimises exactly while everything else stays
fixed:

* ``layers`` -- a window of ``w`` consecutive layers on all nodes.  Layers
  interact only through the capacities, so this is the level model of those
  layers with the storage the other layers leave free;
* ``nodes`` -- two nodes on all layers; the copies on the other nodes are
  constants of the sub-model.

Each sub-MILP (:func:`slimcaching.formulations.arrays.build_level_arrays`)
gets the current latency as an objective cutoff, so HiGHS only returns
something better; the change is priced by the incremental evaluator
(:meth:`~slimcaching.objective.IncrementalEvaluator.gain_of`) and applied only
if it strictly lowers ``T``.  The window width adapts: one wider after a
sub-MILP proved optimal in under a quarter of its time limit, one narrower
after a time limit.

:func:`lns` (registered as ``lns``) is the flagship: ``best`` on a short
share of the budget, then (for models small enough for a per-layer MILP)
column generation by layer from the tightened LP's prices (and, with more
than one expert size, the count decomposition of
:mod:`slimcaching.formulations.counts`) and price-and-branch over its
columns, then :func:`milp_lns` from the better placement for the rest of the
budget.  It also reports the decomposition's proven bound.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..errors import InputError
from ..formulations.arrays import arrays_placement, build_level_arrays, level_model_rows
from ..formulations.assignment import support
from ..formulations.bounds import check_bound
from ..formulations.counts import STALL_ROUNDS, count_generation
from ..formulations.decomposition import column_generation, lp_prices, perturbed_columns, price_and_branch
from ..formulations.direct import hard_deadline, solve_arrays
from ..formulations.solve import OPTIMAL_GAP, capacity_free_bound
from ..formulations.tightenings import DEFAULT_TIGHTENINGS
from ..instances.model import Instance, Placement
from ..objective import IncrementalEvaluator, latency
from ..result import Result, Status, make_result
from ..solvers import SolveInterrupted
from .common import reject_unknown
from .local_search import best

__all__ = ["milp_lns", "lns", "rins", "cutoff_branch_and_bound", "NEIGHBOURHOODS", "FULL_LP_ROWS",
           "MILP_PRICING_ROWS", "FULL_MILP_ROWS"]

NEIGHBOURHOODS = ("layers", "nodes")

#: Level models up to this many rows get a full LP (prices, bound); larger ones do not.
FULL_LP_ROWS = 250_000
#: Layers whose level model has up to this many rows are priced as MILPs, larger ones as LPs.
MILP_PRICING_ROWS = 5_000
#: Level models up to this many rows are finished by HiGHS on the whole model once the LNS is exhausted.
FULL_MILP_ROWS = 50_000


def cutoff_branch_and_bound(instance: Instance, cutoff: float, seconds: float | None, *, seed: int | None = 0,
                            tightenings: Any = DEFAULT_TIGHTENINGS,
                            node_limit: int | None = None) -> tuple[Placement | None, float | None, dict]:
    """HiGHS on the full tightened level model, asked only for latencies below ``cutoff``.

    ``node_limit`` is HiGHS's ``mip_max_nodes`` (a work limit, on top of ``seconds``).

    Returns
    -------
    (Placement or None, float or None, dict)
        HiGHS's incumbent (``None`` if it found none; it may be *worse* than
        the cutoff, which HiGHS uses to prune, not to filter its solutions:
        callers compare latencies), a
        proven lower bound on ``T(opt)`` (``None`` if HiGHS has none), and
        ``status``, ``nodes``, ``wall_s``.

    Notes
    -----
    ``cutoff`` is usually the latency of a feasible placement; it may be any
    number, e.g. a target below the incumbent (``certify``'s ``gap``).  A
    placement better than ``cutoff`` has objective ``>=`` HiGHS's dual bound,
    and any other has latency ``>= cutoff``, so ``min(dual bound, cutoff)``
    is a bound on ``T(opt)``.  When HiGHS proves there is nothing below the
    cutoff (``Infeasible``) the bound is ``cutoff`` less ``1e-8`` (relative),
    above HiGHS's gap tolerance ``1e-9``
    (:data:`~slimcaching.formulations.direct.HIGHS_OPTIONS`).

    The minimum with the cutoff is needed, not a formality: HiGHS 1.16 keeps
    a solution its heuristics find *above* the cutoff, and when its tree is
    exhausted it reports status ``Optimal`` with that solution's value as
    dual bound, which the tree proved only up to the cutoff.  Measured on
    ``mixed-phi-3.5-moe-wifi-rtx-L8`` (optimum 0.118806) with the cutoff
    0.05 % below it: ``Optimal``, dual bound 0.118826, above the optimum.
    """
    model = build_level_arrays(instance, tightenings=tightenings)
    res = solve_arrays(model, integer=True, time_limit=seconds, cutoff=cutoff, seed=seed, node_limit=node_limit)
    info = {"status": res.status, "nodes": res.nodes, "wall_s": res.wall_s}
    margin = cutoff * (1 - 1e-8)
    if res.status == "Infeasible":
        return None, margin, info
    placement = arrays_placement(model, res.col_value) if res.col_value is not None else None
    return placement, (None if res.bound is None else min(res.bound, margin)), info


def rins(instance: Instance, placement: Placement, lp_x: np.ndarray, *, time_limit: float | None,
         seed: int | None = 0, node_limit: int | None = None,
         tightenings: Any = DEFAULT_TIGHTENINGS) -> tuple[Placement | None, dict]:
    """Relaxation-induced neighbourhood search: HiGHS below ``placement`` where it and the LP differ.

    Every element whose LP value (``lp_x``, float (N, L, Emax)) equals its
    value in ``placement`` (within ``1e-6``) is fixed there; HiGHS solves the
    level model of the rest
    (:func:`~slimcaching.formulations.arrays.build_level_arrays` with
    ``free``/``x_fixed``: its optimum is the best completion of the fixed
    part) with the latency of ``placement`` as objective cutoff.  Cached
    elements outside the support are dropped first: they serve no request,
    and their storage goes to the free part.

    Returns
    -------
    (Placement or None, info)
        A feasible placement better than ``placement`` (by HiGHS's objective;
        callers check it with the evaluator), or ``None``; ``info`` holds the
        free and total element counts and HiGHS's status, nodes and time.

    References
    ----------
    .. [1] E. Danna, E. Rothberg, C. Le Pape, "Exploring relaxation induced
       neighborhoods to improve MIP solutions", Mathematical Programming 102, 2005.
    """
    el = support(instance).elements
    at = (el[:, 0], el[:, 1], el[:, 2])
    x = np.zeros_like(placement.x)
    x[at] = placement.x[at]  # elements outside the support change no latency: their storage is freed
    free = np.abs(lp_x[at] - x[at]) > 1e-6
    info: dict[str, Any] = {"free": int(free.sum()), "elements": len(el)}
    if not free.any():
        return None, info
    model = build_level_arrays(instance, free=free, x_fixed=x, tightenings=tightenings)
    res = solve_arrays(model, integer=True, time_limit=time_limit, cutoff=latency(instance, placement), seed=seed,
                       node_limit=node_limit)
    info.update(status=res.status, nodes=res.nodes, wall_s=res.wall_s)
    return (None if res.col_value is None else arrays_placement(model, res.col_value, x_fixed=x)), info


def _changes(new: np.ndarray, old: np.ndarray) -> tuple[list[tuple], list[tuple]]:
    """The ``(n, l, e)`` that ``new`` caches and ``old`` does not, and the reverse."""
    diff = np.argwhere(new != old)
    return ([tuple(map(int, e)) for e in diff if new[tuple(e)]],
            [tuple(map(int, e)) for e in diff if not new[tuple(e)]])


def milp_lns(instance: Instance, start: Placement, *, time_limit: float | None = 60.0, seed: int | None = 0,
             width: int = 2, sub_time: float = 5.0, kinds: tuple[str, ...] = NEIGHBOURHOODS,
             tightenings: Any = DEFAULT_TIGHTENINGS, finish_rows: int = FULL_MILP_ROWS,
             max_steps: int | None = None, sub_nodes: int | None = None,
             stall_steps: int | None = None) -> tuple[Placement, dict]:
    """Large-neighbourhood search with exact HiGHS re-optimisation of layer windows and node pairs.

    Parameters
    ----------
    instance : Instance
    start : Placement
        Feasible start; the result is never worse.
    time_limit : float, optional
        Seconds (``None``: until every neighbourhood is proven optimal for the current placement).
    seed : int, optional
        Seeds the window offset and the node-pair order.
    width : int
        Initial window width (layers); it adapts between 1 and ``L - 1``.
    sub_time : float
        Time limit of each sub-MILP.
    kinds : tuple of {"layers", "nodes"}
        Neighbourhoods, used in turn.  A neighbourhood that would free the whole
        model (``w = L``, or a pair when ``N = 2``) is not used: it is the full MILP.
    finish_rows : int
        When every neighbourhood is clean before the time limit and the level
        model has at most this many rows, the remaining time goes to
        :func:`cutoff_branch_and_bound` on the whole model (0: never).
    max_steps : int, optional
        Sub-MILPs at most (a work limit).
    sub_nodes : int, optional
        Work mode: each sub-MILP gets this many branch-and-bound nodes instead
        of ``sub_time`` seconds, and the window width adapts to node counts
        instead of wall time, so with ``max_steps`` (and ``finish_rows=0``)
        the search is the same on any machine; ``time_limit`` still ends it.
    stall_steps : int, optional
        Stop after this many sub-MILPs in a row that improved nothing (``None``:
        never), for a caller with a better use for the time than proving the
        placement locally optimal everywhere.

    Returns
    -------
    (Placement, dict)
        The placement and a record: ``steps``, ``improving_steps``, ``history``
        (one dict per neighbourhood), ``final_width``, ``exhausted`` (every
        neighbourhood clean for the returned placement: see Notes), ``finish``
        (the whole-model run: ``status``, ``bound``, ``latency``; ``None`` if none ran),
        ``stalled`` (``stall_steps`` ended the search),
        ``interrupted`` (Ctrl-C stopped the search; the placement is the best so far).

    Notes
    -----
    A neighbourhood whose sub-MILP proved that nothing better exists (status
    optimal, or infeasible under the cutoff), or that hit its time limit twice
    without improving, is *clean* until the placement changes; clean
    neighbourhoods are skipped, and the search ends when all of the current
    ones are clean (so it ends without a time limit too).
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    rng = np.random.default_rng(0 if seed is None else seed)
    L, N = instance.L, instance.N
    sup = support(instance)
    ev = IncrementalEvaluator(instance, start)
    pairs = [(a, b) for a in range(N) for b in range(a + 1, N)] if N > 2 else []
    rng.shuffle(pairs)
    kinds = tuple(k for k in kinds if (k == "layers" and L > 1) or (k == "nodes" and pairs))
    w = max(1, min(int(width), L - 1))
    offset = int(rng.integers(L)) if L else 0
    history: list[dict] = []
    clean: set[tuple] = set()
    attempts: dict[tuple, int] = {}
    cursor = {"layers": 0, "nodes": 0}
    tol = 1e-12 * max(ev.empty_latency, 1e-300)

    def candidates(kind: str) -> list[tuple]:
        if kind == "layers":
            step = max(1, w // 2)
            starts = sorted({(offset + i * step) % L for i in range(math.ceil(L / step))})
            return [("layers", tuple(sorted((s0 + i) % L for i in range(w)))) for s0 in starts]
        return [("nodes", pr) for pr in pairs]

    k = 0
    exhausted = not kinds  # no neighbourhood at all (one layer, at most two nodes): only the whole model
    interrupted, stalled, finish = False, False, None
    kept = ev.placement()  # the last placement applied in full (a Ctrl-C may strike inside ev.apply)
    try:
        while kinds and time.perf_counter() < deadline and (max_steps is None or len(history) < max_steps):
            pending = {kind: [c for c in candidates(kind) if c not in clean] for kind in kinds}
            if not any(pending.values()):
                exhausted = True
                break
            kind = kinds[k % len(kinds)]
            k += 1
            if not pending[kind]:
                continue
            cands = candidates(kind)
            key = None
            for i in range(len(cands)):
                c = cands[(cursor[kind] + i) % len(cands)]
                if c not in clean:
                    key, cursor[kind] = c, (cursor[kind] + i + 1) % len(cands)
                    break
            if kind == "layers":
                mask = np.zeros(L, dtype=bool)
                mask[list(key[1])] = True
                model = build_level_arrays(instance, layers=mask, free=mask[sup.elements[:, 1]], x_fixed=ev.x,
                                           tightenings=tightenings)
            else:
                model = build_level_arrays(instance, free=np.isin(sup.elements[:, 0], key[1]), x_fixed=ev.x,
                                           tightenings=tightenings)
            if model.n_x == 0:
                clean.add(key)
                continue
            left = deadline - time.perf_counter()
            if left <= 0:
                break  # building the sub-model used the rest of the time
            if sub_nodes is None:
                res = solve_arrays(model, integer=True, cutoff=ev.latency,
                                   time_limit=min(sub_time, left) if math.isfinite(left) else sub_time)
            else:
                res = solve_arrays(model, integer=True, cutoff=ev.latency, node_limit=sub_nodes,
                                   time_limit=left if math.isfinite(left) else None)
            gain = 0.0
            if res.col_value is not None:
                new = arrays_placement(model, res.col_value, x_fixed=ev.x)
                add, remove = _changes(new.x, ev.x)
                gain = ev.gain_of(add, remove) if add or remove else 0.0
                if gain > tol and new.is_feasible(instance):
                    ev.apply(add, remove)
                    kept = ev.placement()
                    clean.clear()
                    attempts.clear()
                else:
                    gain = 0.0
            proven = res.status in ("Optimal", "Infeasible")
            attempts[key] = attempts.get(key, 0) + 1
            if gain == 0.0 and (proven or attempts[key] >= 2):
                clean.add(key)  # proven, or twice unproven for this placement: not retried until it changes
            if kind == "layers":
                quick = res.wall_s < sub_time / 4 if sub_nodes is None else res.nodes < sub_nodes / 4
                if proven and quick and w < L - 1:
                    w += 1
                elif not proven and w > 1:
                    w -= 1
            history.append({"t": time.perf_counter() - t0, "kind": kind, "free": list(key[1]), "status": res.status,
                            "sub_s": res.wall_s, "gain": gain, "latency": ev.latency, "width": w})
            if stall_steps is not None and len(history) >= stall_steps and \
                    not any(h["gain"] > 0 for h in history[-stall_steps:]):
                stalled = True
                break
        if exhausted and finish_rows and level_model_rows(instance) <= finish_rows and deadline - time.perf_counter() > 0.5:
            # every window is locally optimal: the rest of the time goes to HiGHS on the whole model below T
            left = deadline - time.perf_counter()
            placement, bound, finish = cutoff_branch_and_bound(instance, ev.latency, None if math.isinf(left) else left,
                                                               seed=seed, tightenings=tightenings)
            finish["bound"] = bound
            if placement is not None and placement.is_feasible(instance):
                add, remove = _changes(placement.x, ev.x)
                if (add or remove) and ev.gain_of(add, remove) > tol:
                    ev.apply(add, remove)
                    kept = ev.placement()
            finish["latency"] = ev.latency
    except KeyboardInterrupt as exc:
        if isinstance(exc, SolveInterrupted):  # an inner method's, already holding its result
            raise
        interrupted = True  # Ctrl-C or SIGTERM: the caller re-raises once it has its result
    return kept, {"steps": len(history), "improving_steps": sum(h["gain"] > 0 for h in history),
                  "final_width": w, "exhausted": exhausted, "finish": finish, "history": history,
                  "stalled": stalled, "interrupted": interrupted}


_LNS_PARAMS = ("width", "sub_time", "neighbourhoods", "decompose", "best_share", "decompose_share", "price_time",
               "rins_share")


def _check_lns(params: dict) -> dict:
    unknown = {k: v for k, v in params.items() if k not in _LNS_PARAMS}
    reject_unknown("lns", unknown, _LNS_PARAMS)
    out = {"width": 2, "sub_time": 3.0, "neighbourhoods": NEIGHBOURHOODS, "decompose": "auto",
           "best_share": 0.15, "decompose_share": 0.45, "price_time": 2.0, "rins_share": 0.5}
    out.update(params)
    problems = []
    if not (isinstance(out["width"], int) and out["width"] >= 1):
        problems.append(("--param width", f"must be an integer >= 1, got {out['width']!r}"))
    for key in ("sub_time", "price_time"):
        if not (isinstance(out[key], (int, float)) and out[key] > 0):
            problems.append((f"--param {key}", f"must be a number > 0, got {out[key]!r}"))
    for key in ("best_share", "decompose_share", "rins_share"):
        if not (isinstance(out[key], (int, float)) and 0 <= out[key] < 1):
            problems.append((f"--param {key}", f"must be a number in [0, 1), got {out[key]!r}"))
    kinds = out["neighbourhoods"]
    kinds = tuple(kinds.split(",")) if isinstance(kinds, str) else tuple(kinds)
    if not kinds or any(k not in NEIGHBOURHOODS for k in kinds):
        problems.append(("--param neighbourhoods", f"must be a comma list of {', '.join(NEIGHBOURHOODS)}, "
                                                   f"got {out['neighbourhoods']!r}"))
    out["neighbourhoods"] = kinds
    if out["decompose"] not in ("auto", True, False):
        problems.append(("--param decompose", f"must be auto, true or false, got {out['decompose']!r}"))
    if problems:
        raise InputError(problems[0][0], [("", rule) for _, rule in problems])
    return out


def lns(instance: Instance, *, seed: int | None = None, time_limit: float | None = None, **params) -> Result:
    """The flagship: ``best``, decomposition columns with price-and-branch, RINS, then MILP-LNS.

    Problem: minimise ``T(x)`` subject to the node capacities
    (``docs/model.md`` section 1).

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Seeds ``best`` and the neighbourhood order (``None``: 0).
    time_limit : float, optional
        Seconds for everything; without one every stage runs to its own end
        (``best`` and column generation converge, the LNS stops after a full
        cycle of neighbourhoods without improvement).
    width, sub_time, neighbourhoods
        Of :func:`milp_lns` (defaults 2, 3.0, ``layers,nodes``).
    decompose : {"auto", True, False}
        Run column generation (then, for more columns, every layer priced at
        perturbed prices: :func:`~slimcaching.formulations.decomposition.perturbed_columns`)
        and price-and-branch before the LNS; ``auto``
        when each layer's level model has at most ``MILP_PRICING_ROWS`` rows
        and the full model at most ``FULL_LP_ROWS``.
    best_share, decompose_share : float
        Shares of the budget for ``best`` (0.15) and for the decomposition
        (0.45, price-and-branch included); the LNS gets the rest.
    price_time : float
        Time limit of each pricing MILP (2 s).
    rins_share : float
        After price-and-branch, this share of the time left goes to
        :func:`rins` from the tightened LP's point (0.5; 0 skips it).

    Returns
    -------
    Result
        Status ``feasible`` with ``bound`` = the best of the decomposition's
        Lagrangian bound (with the count decomposition's on mixed expert
        sizes) and the bound of the whole-model finish of
        :func:`milp_lns` when either ran (else ``heuristic``); ``info``: ``stages`` (latency
        and time after each stage), ``lns`` (the record of :func:`milp_lns`),
        ``decomposition`` (rounds, columns, bound, and ``rins``: the record of :func:`rins`).

    Notes
    -----
    Every stage only accepts strict improvements of the evaluator's ``T``, so
    ``T(lns) <= T(best run on its share)``; no approximation guarantee is
    claimed.  On the three Mixtral paper instances it is measured against
    HiGHS's incumbent at equal wall time in ``docs/performance.md``.
    """
    t0 = time.perf_counter()
    opts = _check_lns(params)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise InputError("--time-limit", ("", f"must be a number > 0, got {time_limit!r}"))
    budget = math.inf if time_limit is None else float(time_limit)
    seed = 0 if seed is None else seed
    stages = []

    def left() -> float:
        return budget - (time.perf_counter() - t0)

    def share(f: float) -> float | None:
        return None if math.isinf(budget) else max(0.01, f * budget)

    current, cur_t = instance.empty_placement(), math.inf
    bound, dw_info, record, stopped_by = None, None, None, None
    try:
        with hard_deadline(None if math.isinf(budget) else t0 + budget):
            first = best(instance, seed=seed, time_limit=share(opts["best_share"]))
            current, cur_t = first.placement, first.latency
            stages.append({"stage": "best", "latency": cur_t, "t": time.perf_counter() - t0})
            use_dw = opts["decompose"]
            if use_dw == "auto":
                per_layer = max((level_model_rows(instance, np.arange(instance.L) == l) for l in range(instance.L)),
                                default=0)
                use_dw = per_layer <= MILP_PRICING_ROWS and level_model_rows(instance) <= FULL_LP_ROWS
            if use_dw and left() > 0:
                dw_deadline = time.perf_counter() + opts["decompose_share"] * budget

                def until(f: float) -> float | None:
                    return None if math.isinf(budget) else max(0.01, f * (dw_deadline - time.perf_counter()))

                lp, prices, lp_x = lp_prices(instance, time_limit=until(1.0), point=True)
                bound = max(b for b in (lp, capacity_free_bound(instance)) if b is not None and math.isfinite(b))
                mixed = len(np.unique(instance.expert_size)) > 1
                dw = column_generation(instance, starts=[current], prices=prices,
                                       time_limit=until(0.4 if mixed else 0.8), price_time=opts["price_time"])
                extra = perturbed_columns(instance, dw.prices, dw.capacity, known=dw.columns, seed=seed,
                                          price_time=opts["price_time"], time_limit=until(0.25))
                columns, cd = dw.columns, None
                if mixed:  # integer layer counts: a stronger bound on mixed sizes (formulations.counts)
                    cd = count_generation(instance, start=dw, starts=[current], time_limit=until(0.7),
                                          price_time=opts["price_time"], stall_rounds=STALL_ROUNDS)
                    columns = cd.columns
                bound = max(b for b in (dw.bound, None if cd is None else cd.bound, bound)
                            if b is not None and math.isfinite(b))
                dw_info = {"lp_bound": lp, "lagrangian_bound": dw.bound,
                           "count_bound": None if cd is None else cd.bound, "rounds": dw.rounds,
                           "columns": len(columns), "perturbed_columns": len(extra), "converged": dw.converged,
                           "price_and_branch": None}
                placement, dw_info["price_and_branch"] = price_and_branch(instance, columns + extra, dw.capacity,
                                                                          cutoff=cur_t,
                                                                          time_limit=until(1.0))
                if placement is not None and latency(instance, placement) < cur_t:
                    current, cur_t = placement, latency(instance, placement)
                stages.append({"stage": "price-and-branch", "latency": cur_t, "t": time.perf_counter() - t0})
                if lp_x is not None and opts["rins_share"] > 0 and left() > 0.5:
                    placement, dw_info["rins"] = rins(
                        instance, current, lp_x, seed=seed,
                        time_limit=None if math.isinf(budget) else opts["rins_share"] * left())
                    if (placement is not None and placement.is_feasible(instance)
                            and latency(instance, placement) < cur_t):
                        current, cur_t = placement, latency(instance, placement)
                    stages.append({"stage": "rins", "latency": cur_t, "t": time.perf_counter() - t0})
            if left() > 0:
                current, record = milp_lns(instance, current, time_limit=None if math.isinf(budget) else left(),
                                           seed=seed, width=opts["width"],
                                           sub_time=opts["sub_time"], kinds=opts["neighbourhoods"])
                stages.append({"stage": "milp-lns", "latency": latency(instance, current),
                               "t": time.perf_counter() - t0})
                if record["finish"] is not None and record["finish"]["bound"] is not None:
                    bound = max(record["finish"]["bound"], -math.inf if bound is None else bound)
    except KeyboardInterrupt as exc:
        if isinstance(exc, SolveInterrupted):  # an inner method's, already holding its result
            raise
        stopped_by = "interrupt"
    if record is not None and record.get("interrupted"):
        stopped_by = "interrupt"
    res = make_result(instance, current, algorithm="lns", status=Status.FEASIBLE if bound is not None else Status.HEURISTIC,
                      runtime_s=time.perf_counter() - t0, seed=seed, bound=bound,
                      params={k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
                      info={"stages": stages, "decomposition": dw_info, "stopped_by": stopped_by,
                            "lns": None if record is None else {k: v for k, v in record.items() if k != "history"}})
    check_bound(res.bound, "lns (decomposition)", res.latency, "lns")
    if res.gap is not None and res.gap <= OPTIMAL_GAP:
        res.status = Status.OPTIMAL
    if stopped_by == "interrupt":
        res.message = (res.message + "; " if res.message else "") + "interrupted"
        raise SolveInterrupted(res)
    return res
