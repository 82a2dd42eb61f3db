"""``decompose``: column generation by layer with a proven bound, then price-and-branch.

The method of :mod:`slimcaching.formulations.decomposition` as a registered
algorithm: initial columns from ``best`` (a short share of the budget), prices
from the tightened level LP when the model is small enough, stabilised column
generation (a valid Lagrangian bound after every round), on mixed expert sizes
the count decomposition (:mod:`slimcaching.formulations.counts`) from there,
and a MILP over the generated columns for the incumbent.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ..errors import InputError
from ..formulations.arrays import level_model_rows
from ..formulations.bounds import check_bound
from ..formulations.counts import count_generation
from ..formulations.decomposition import (PERTURB_ROUNDS, PRICING, column_generation, lp_prices, perturbed_columns,
                                          price_and_branch)
from ..formulations.direct import hard_deadline
from ..formulations.solve import OPTIMAL_GAP, capacity_free_bound
from ..formulations.tightenings import check_tightenings
from ..instances.model import Instance
from ..objective import latency
from ..result import Result, Status, make_result
from ..solvers import SolveInterrupted
from .common import reject_unknown
from .lns import FULL_LP_ROWS, MILP_PRICING_ROWS
from .local_search import best

__all__ = ["decompose"]

_PARAMS = ("alpha", "pricing", "price_time", "lp_start", "best_share", "tightenings", "counts", "perturb")


def _options(params: dict) -> dict:
    reject_unknown("decompose", {k: v for k, v in params.items() if k not in _PARAMS}, _PARAMS)
    out = {"alpha": 0.5, "pricing": "auto", "price_time": 5.0, "lp_start": "auto", "best_share": 0.1,
           "tightenings": None, "counts": "auto", "perturb": PERTURB_ROUNDS}
    out.update(params)
    problems = []
    if not (isinstance(out["alpha"], (int, float)) and 0 <= out["alpha"] < 1):
        problems.append(("--param alpha", f"must be a number in [0, 1), got {out['alpha']!r}"))
    if out["pricing"] not in PRICING + ("auto",):
        problems.append(("--param pricing", f"must be auto, {' or '.join(PRICING)}, got {out['pricing']!r}"))
    if not (isinstance(out["price_time"], (int, float)) and out["price_time"] > 0):
        problems.append(("--param price_time", f"must be a number > 0, got {out['price_time']!r}"))
    if out["lp_start"] not in ("auto", True, False):
        problems.append(("--param lp_start", f"must be auto, true or false, got {out['lp_start']!r}"))
    if out["counts"] not in ("auto", True, False):
        problems.append(("--param counts", f"must be auto, true or false, got {out['counts']!r}"))
    if not (isinstance(out["perturb"], int) and not isinstance(out["perturb"], bool) and out["perturb"] >= 0):
        problems.append(("--param perturb", f"must be an integer >= 0, got {out['perturb']!r}"))
    if not (isinstance(out["best_share"], (int, float)) and 0 <= out["best_share"] < 1):
        problems.append(("--param best_share", f"must be a number in [0, 1), got {out['best_share']!r}"))
    if problems:
        raise InputError(problems[0][0], [("", rule) for _, rule in problems])
    out["tightenings"] = check_tightenings(out["tightenings"])
    return out


def decompose(instance: Instance, *, seed: int | None = None, time_limit: float | None = None, **params) -> Result:
    """Dantzig-Wolfe decomposition by layer: a proven bound and a price-and-branch incumbent.

    Problem: minimise ``T(x)`` subject to the node capacities
    (``docs/model.md`` section 1).

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Seeds the ``best`` start (``None``: 0).
    time_limit : float, optional
        Seconds; without one, column generation runs to convergence.
    alpha : float, default 0.5
        Wentges smoothing weight.
    pricing : {"auto", "milp", "lp"}
        ``auto``: MILP pricing when each layer's level model has at most
        ``MILP_PRICING_ROWS`` rows, LP pricing otherwise (weaker bound, rounded columns).
    price_time : float, default 5
        Time limit of each pricing problem.
    lp_start : {"auto", True, False}
        Start from the tightened LP's capacity prices (``auto``: when the level
        model has at most ``FULL_LP_ROWS`` rows).
    best_share : float, default 0.1
        Share of the budget for the ``best`` start (5 s without a limit).
    counts : {"auto", True, False}
        After the layer decomposition, the count decomposition
        (:mod:`slimcaching.formulations.counts`: integer per-node layer counts),
        from its prices and columns; ``auto``: when the layers have more than
        one distinct expert size (with one size every node's count polytope is
        integral and the bound cannot rise).
    perturb : int, default 40
        Rounds of pricing at perturbed prices after the layer decomposition
        (:func:`~slimcaching.formulations.decomposition.perturbed_columns`,
        seeded by ``seed``, at most a tenth of the time left): more columns
        for price-and-branch; 0 turns it off.
    tightenings
        Of :mod:`slimcaching.formulations.tightenings` (default all).

    Returns
    -------
    Result
        ``bound``: the best of the Lagrangian bound, the LP bound and the
        capacity-free bound; ``status`` ``optimal`` when the gap is at most
        ``1e-6``, else ``feasible``; ``info``: ``bound_source``,
        ``incumbent_source``, ``lagrangian_bound``, ``count_bound`` (with
        ``count_rounds``, ``count_converged``), ``lp_bound``, ``rounds``,
        ``columns``, ``perturbed_columns``, ``converged``, ``pricing``, ``price_and_branch``,
        ``tightenings``, ``stopped_by`` (``interrupt`` or ``None``).

    Raises
    ------
    SolveInterrupted
        Ctrl-C; its ``result`` holds the best placement and bound so far.

    Notes
    -----
    Guarantee: ``bound <= T(opt) <= T(x)``, proven for every stopping point
    (see :mod:`slimcaching.formulations.decomposition`); the bound is checked
    against the incumbent (:func:`~slimcaching.formulations.bounds.check_bound`).
    With MILP pricing and convergence the bound is the Dantzig-Wolfe bound,
    never below the tightened LP bound; measured on the paper instances in
    ``docs/formulations.md``.
    """
    t0 = time.perf_counter()
    opts = _options(params)
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise InputError("--time-limit", ("", f"must be a number > 0, got {time_limit!r}"))
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    seed = 0 if seed is None else seed
    pricing = opts["pricing"]
    if pricing == "auto":
        per_layer = max((level_model_rows(instance, np.arange(instance.L) == l) for l in range(instance.L)), default=0)
        pricing = "milp" if per_layer <= MILP_PRICING_ROWS else "lp"
    lp_start = opts["lp_start"]
    if lp_start == "auto":
        lp_start = level_model_rows(instance) <= FULL_LP_ROWS
    use_counts = opts["counts"]
    if use_counts == "auto":
        use_counts = len(np.unique(instance.expert_size)) > 1
    start, lp, dw, cd, placement, pb, stopped_by = None, None, None, None, None, None, None
    extra: list = []
    try:
        with hard_deadline(None if math.isinf(deadline) else deadline):
            start = best(instance, seed=seed, time_limit=opts["best_share"] * time_limit if time_limit else 5.0)
            prices = None
            if lp_start:
                remaining = deadline - time.perf_counter()
                lp, prices = lp_prices(instance, tightenings=opts["tightenings"],
                                       time_limit=None if math.isinf(remaining) else max(0.01, 0.5 * remaining))
            remaining = deadline - time.perf_counter()
            dw = column_generation(instance, starts=[start.placement], prices=prices, alpha=opts["alpha"],
                                   time_limit=None if math.isinf(remaining) else
                                   max(0.0, (0.4 if use_counts else 0.85) * remaining),
                                   price_time=opts["price_time"], pricing=pricing, tightenings=opts["tightenings"])
            columns, extra = dw.columns, []
            if opts["perturb"] and deadline - time.perf_counter() > 0:
                remaining = deadline - time.perf_counter()
                extra = perturbed_columns(instance, dw.prices, dw.capacity, known=dw.columns, rounds=opts["perturb"],
                                          seed=seed, pricing=pricing, price_time=opts["price_time"],
                                          time_limit=None if math.isinf(remaining) else 0.1 * remaining,
                                          tightenings=opts["tightenings"])
            if use_counts and deadline - time.perf_counter() > 0:
                remaining = deadline - time.perf_counter()
                cd = count_generation(instance, start=dw, starts=[start.placement], alpha=opts["alpha"],
                                      time_limit=None if math.isinf(remaining) else max(0.0, 0.75 * remaining),
                                      price_time=opts["price_time"], pricing=pricing, tightenings=opts["tightenings"])
                columns = cd.columns
            remaining = deadline - time.perf_counter()
            placement, pb = price_and_branch(instance, columns + extra, dw.capacity, cutoff=start.latency,
                                             time_limit=None if math.isinf(remaining) else max(0.01, remaining))
    except KeyboardInterrupt as exc:
        if isinstance(exc, SolveInterrupted):  # an inner method's, already holding its result
            raise
        stopped_by = "interrupt"
    incumbent, source = (instance.empty_placement(), "cloud") if start is None else (start.placement, "best")
    if placement is not None and latency(instance, placement) < latency(instance, incumbent):
        incumbent, source = placement, "price-and-branch"
    candidates = {"lagrangian": None if dw is None else dw.bound, "counts": None if cd is None else cd.bound,
                  "lp": lp, "capacity-free": capacity_free_bound(instance)}
    bound_source, bound = max(((k, v) for k, v in candidates.items() if v is not None and math.isfinite(v)),
                              key=lambda kv: kv[1])
    res = make_result(instance, incumbent, algorithm="decompose", status=Status.FEASIBLE,
                      runtime_s=time.perf_counter() - t0, seed=seed, bound=bound,
                      params={**opts, "tightenings": list(opts["tightenings"])},
                      info={"bound_source": bound_source, "incumbent_source": source,
                            "lagrangian_bound": None if dw is None else dw.bound,
                            "count_bound": None if cd is None else cd.bound,
                            "count_rounds": None if cd is None else cd.rounds,
                            "count_converged": None if cd is None else cd.converged,
                            "lp_bound": lp, "rounds": None if dw is None else dw.rounds,
                            "columns": None if dw is None else len(dw.columns),
                            "perturbed_columns": len(extra),
                            "converged": dw is not None and dw.converged, "pricing": pricing, "price_and_branch": pb,
                            "best_latency": None if start is None else start.latency, "stopped_by": stopped_by,
                            "tightenings": {"applied": list(opts["tightenings"]),
                                            "capacity": {} if dw is None else
                                            {n: [int(q), int(c)] for n, q, c in
                                             zip(instance.node_names, instance.capacity, dw.capacity) if c < q}}})
    for name, value in candidates.items():
        check_bound(value, name, res.latency, source)
    if res.gap is not None and res.gap <= OPTIMAL_GAP:
        res.status = Status.OPTIMAL
    if stopped_by == "interrupt":
        res.message = (res.message + "; " if res.message else "") + "interrupted"
        raise SolveInterrupted(res)
    return res
