"""``best``: ``successive``, then ``cyclic``, then ``polish``, plus restarts; the strongest heuristic."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...errors import InputError
from ...instances.model import Instance
from ...result import Result, Status, make_result
from .. import successive as _successive
from ..baselines import cloud, independent, popularity, random_placement
from ..greedy import greedy
from ..maxconv import maxconv
from .cyclic import cyclic
from .options import _SINGLE_NODE_KEYS, _applicable, _check_count, _deadline, _inherit, _single_node_kwargs
from .polish import polish

__all__ = ["best", "AUTO_RESTART_ELEMENTS", "START_ALGORITHMS"]

#: ``best(restarts="auto")`` adds random restarts up to this many elements ``N sum_l E_l``.
AUTO_RESTART_ELEMENTS = 1000

#: The heuristics ``extra_starts`` may name (every registered algorithm below ``best``
#: that needs no solver: the exact references would spend the budget on a proof).
START_ALGORITHMS = {
    "cloud": cloud, "random": random_placement, "popularity": popularity, "independent": independent,
    "greedy": greedy, "successive": _successive.successive, "maxconv": maxconv,
    "cyclic": cyclic, "polish": polish,
}


def best(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
         extra_starts: Any = ("independent",), restarts: int | str = "auto", **params) -> Result:
    """Our strongest heuristic: ``successive``, then :func:`cyclic`, then :func:`polish` (plus restarts).

    Problem: maximise ``R(x)`` subject to the node capacities
    (``docs/model.md`` section 1).  The main chain runs ``successive``, then
    :func:`cyclic` from its placement, then :func:`polish` from that; each
    stage accepts only strict improvements.  The same cyclic + polish chain
    is then run from each algorithm in ``extra_starts`` (default the
    co-activation-blind ``independent`` baseline, whose placements spread
    experts over nodes and land in other basins) and from ``restarts``
    seeded random placements (the ``random`` baseline), and the placement
    with the lowest latency is returned (the main chain's on ties).

    Guarantee: ``R(best) >= R(main chain) >= R(cyclic stage) >= R(successive)``,
    hence every approximation guarantee of ``successive`` holds for ``best``
    in the same regime (reported in ``Result.guarantee``), and none beyond
    it.  On return without a time limit the placement is a local optimum of
    the neighbourhood of :func:`polish`.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Passed to every stage and seeds the random restarts (``None``: 0);
        recorded.
    time_limit : float, optional
        Seconds for all stages together, the main chain first; a stage that
        starts after the limit returns its input unchanged and the result
        has status ``time_limit``.
    extra_starts : sequence of str or comma-separated str
        Registered algorithms whose placements also start a cyclic + polish
        chain (not ``best``); empty for none.
    restarts : int or "auto"
        Random starts (seeds drawn from ``seed``), each followed by cyclic +
        polish; 0 for none.  ``"auto"`` (default): 4 when the instance has
        at most :data:`AUTO_RESTART_ELEMENTS` elements ``N sum_l E_l``, else
        0, so large instances stay fast.  ``extra_starts=(), restarts=0``
        runs the main chain only.
    **params
        ``layer_solver``, ``max_enumerate``, ``eps`` (successive and
        cyclic), ``order``, ``max_passes`` (cyclic), ``moves``,
        ``max_moves``, ``max_sets`` (polish), ``tol`` (cyclic and polish).

    Returns
    -------
    Result
        ``info["stages"]``: the main chain's stages (algorithm, latency,
        status, runtime, the stage's own ``info``); ``info["restarts"]``: per
        extra or random start its stages; ``info["chosen"]``: which chain won.

    Raises
    ------
    InputError
        An unknown or out-of-range parameter.

    Notes
    -----
    Cost is the sum of the chains': ``successive`` (``N`` single-node DPs),
    a few ``cyclic`` passes (``N`` single-node DPs each) and the polish
    scans (see :func:`polish`), once per start: ``1 + len(extra_starts) +
    restarts`` chains (a random start costs the most polish steps).

    References
    ----------
    .. [1] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    .. [2] E. Aarts and J. K. Lenstra (eds.), "Local Search in Combinatorial
       Optimization", Wiley, 1997.
    """
    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    valid = set(_SINGLE_NODE_KEYS) | {"order", "max_passes", "moves", "max_moves", "max_sets", "tol"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise InputError("--param", (unknown[0], f"unknown parameter {unknown[0]!r} for best; valid: "
                                                 f"{', '.join(sorted(valid | {'extra_starts', 'restarts'}))}"))
    if isinstance(extra_starts, str):
        extra_starts = [v.strip() for v in extra_starts.split(",") if v.strip()]
    extra_starts = list(extra_starts or ())
    bad = [v for v in extra_starts if v not in START_ALGORITHMS]
    if bad:
        raise InputError("--param", ("extra_starts", f"extra_starts must name registered algorithms other than "
                                                     f"best; got {bad[0]!r} (valid: {', '.join(START_ALGORITHMS)})"))
    if restarts == "auto":
        restarts = 4 if instance.N * int(instance.experts.sum()) <= AUTO_RESTART_ELEMENTS else 0
    restarts = _check_count("restarts", restarts, 0)
    single = _single_node_kwargs(params)
    cyc = {k: params[k] for k in ("order", "max_passes", "tol") if k in params}
    pol = {k: params[k] for k in ("moves", "max_moves", "max_sets", "tol") if k in params}

    def left() -> float | None:
        return None if time_limit is None else max(0.0, deadline - time.perf_counter())

    def chain(first: Result) -> list[Result]:
        r2 = cyclic(instance, seed=seed, time_limit=left(), start=first.placement, **cyc, **single)
        r3 = polish(instance, start=r2.placement, seed=seed, time_limit=left(), **pol)
        return [first, r2, r3]

    def report(stages: list[Result]) -> list[dict]:
        return [{"algorithm": r.algorithm, "latency": r.latency, "status": str(r.status),
                 "runtime_s": r.runtime_s, "info": r.info} for r in stages]

    r1 = _successive.successive(instance, seed=seed, time_limit=left(), **single,
                                **({"order": params["order"]} if "order" in params else {}))
    main = chain(r1)
    chosen, final, timed_out = "successive", main[-1], any(r.status == Status.TIME_LIMIT for r in main)
    starts = [(name, name, seed) for name in extra_starts]
    starts += [(f"random(seed={int(s)})", "random", int(s))
               for s in np.random.default_rng(0 if seed is None else seed).integers(0, 2**31 - 1, size=restarts)]
    others = []
    for label, name, s in starts:
        stages = chain(START_ALGORITHMS[name](instance, seed=s, time_limit=left()))
        others.append({"start": label, "stages": report(stages)})
        timed_out = timed_out or any(r.status == Status.TIME_LIMIT for r in stages)
        if stages[-1].latency < final.latency:
            chosen, final = label, stages[-1]
    info = {"stages": report(main), "restarts": others, "chosen": chosen}
    run_params = {**r1.params, "cyclic": main[1].params, "polish": main[2].params,
                  "extra_starts": extra_starts, "restarts": restarts, "seed": seed}
    return make_result(instance, final.placement, algorithm="best",
                       status=Status.TIME_LIMIT if timed_out else Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params=run_params, seed=seed,
                       guarantee=_applicable(best.guarantees, instance, run_params), info=info)


best.guarantees = tuple(_inherit(g, "best") for g in _successive.successive.guarantees)  # type: ignore[attr-defined]
