"""``cyclic``: re-optimise one node at a time with the others fixed (block-coordinate ascent)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...errors import InputError
from ...instances.model import Instance, Placement
from ...objective import IncrementalEvaluator
from ...result import Result, Status, make_result
from .. import successive as _successive
from .options import (_SINGLE_NODE_KEYS, _applicable, _check_count, _check_start, _check_tol, _deadline,
                      _inherit, _single_node_kwargs)

__all__ = ["cyclic"]


def _cyclic_sweeps(ev: IncrementalEvaluator, *, order: list[int], max_passes: int | None, tol: float,
                   deadline: float, single: dict) -> dict:
    """Re-solve one node at a time on ``ev`` in place until a pass improves nothing.

    A node's tables are kept between its solves and rebuilt only for the
    layers another node changed since (:class:`~slimcaching.algorithms.successive.NodeTables`);
    a node none of whose layers changed since its last solve is skipped: its
    answer would be the same, and so would the decision on it (its own cache
    is then that answer, or the answer was rejected against the same
    placement).  The steps are those of re-solving every node from scratch.
    """
    inst = ev.instance
    cache = _successive.NodeTables(inst, **single)
    passes = improved_nodes = rejected = skipped = 0
    exact = True
    stopped = "no_improvement"
    while True:
        if max_passes is not None and passes >= max_passes:
            stopped = "max_passes"
            break
        passes += 1
        improved = False
        for n in order:
            if time.perf_counter() > deadline:
                stopped = "time_limit"
                break
            if n in cache.tables and not len(cache.stale(n)):
                skipped += 1
                continue
            sol = cache.solve(ev, n, deadline=deadline)
            if sol is None:
                stopped = "time_limit"
                break
            exact = exact and bool(getattr(sol, "exact", True))
            new = {(int(l), int(e)) for _, l, e in np.asarray(sol.elements, dtype=np.int64).reshape(-1, 3)}
            old = {(int(l), int(e)) for l, e in np.argwhere(ev.x[n])}
            if new == old:
                continue
            if sum(int(inst.expert_size[l]) for l, _ in new) > inst.capacity[n]:
                rejected += 1  # a single-node solver must respect Q_n; never commit an infeasible cache
                continue
            add = [(n, l, e) for l, e in sorted(new - old)]
            remove = [(n, l, e) for l, e in sorted(old - new)]
            if ev.gain_of(add=add, remove=remove) > tol:
                ev.apply(add=add, remove=remove)
                cache.changed(n, [l for _, l, _ in add + remove])
                improved = True
                improved_nodes += 1
        if stopped == "time_limit" or not improved:
            break
    return {"passes": passes, "improvements": improved_nodes, "stopped": stopped,
            "single_node_exact": exact, "rejected_infeasible": rejected, "skipped_unchanged": skipped,
            "tables_built": cache.built}


def cyclic(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
           start: Placement | None = None, max_passes: int | None = 50, order: Any = "greedy",
           tol: float | None = None, **params) -> Result:
    """Cyclic re-optimisation: block-coordinate ascent over nodes with the single-node solver.

    Problem: maximise ``R(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``
    (``docs/model.md`` section 1).  Starting from ``successive``'s placement (or
    ``start``), visit the nodes in ``order``; for node ``n``, with every other
    node fixed, solve the single-node problem "which experts maximise the
    extra reduction within ``Q_n``" as if ``n`` were empty
    (:func:`slimcaching.algorithms.successive.solve_single_node`) and replace
    ``n``'s cache by the answer if that strictly increases ``R`` (by more
    than ``tol``).  Stop when a whole pass changes nothing, after
    ``max_passes`` passes, or at the time limit.

    Guarantee: ``R(cyclic) >= R(start)``; in particular
    ``R(cyclic) >= R(successive)`` by default, so every guarantee proven for
    ``successive`` holds for ``cyclic`` in the same regime (listed in
    ``Result.guarantee``), and none beyond it.  When every single-node solve
    is exact (``info["single_node_exact"]``) and the run stopped with
    ``"no_improvement"``, the result is *node-wise optimal*: no change of one
    node's cache alone increases ``R`` by more than ``tol``.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Passed to ``successive`` for the start (recorded).
    time_limit : float, optional
        Seconds for the whole run including the start; the incumbent is
        returned with status ``time_limit`` when reached.
    start : Placement, optional
        Feasible start; ``successive``'s placement when omitted.
    max_passes : int or None
        Cap on passes over the nodes (``None``: until no improvement).
    order : {"greedy", "latency", "capacity", "given"} or sequence of node names / indices
        Node visiting order within a pass, and of the ``successive`` start
        (:func:`slimcaching.algorithms.successive.node_order`).  ``greedy``
        (default, as in ``successive``) starts from ``successive`` with the
        greedy order and visits the nodes of each pass in the ``latency``
        order.
    tol : float, optional
        Improvement threshold; default ``1e-12 T(empty)``.
    **params
        ``layer_solver``, ``max_enumerate``, ``eps``: passed to the
        single-node solver and to ``successive``.

    Returns
    -------
    Result
        ``info``: passes, accepted node re-solves, start latency, whether all
        single-node solves were exact, why it stopped.

    Raises
    ------
    InputError
        Bad ``start``, ``order``, ``max_passes`` or an unknown parameter.

    Notes
    -----
    One pass costs ``N`` single-node solves (dynamic programming over layers
    and storage, see ``successive``) plus one incremental ``gain_of`` per node
    whose answer differs.  Each accepted re-solve increases ``R`` by more
    than ``tol`` and there are finitely many placements, so the loop
    terminates even without ``max_passes``.

    References
    ----------
    .. [1] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    .. [2] P. Tseng, "Convergence of a block coordinate descent method for
       nondifferentiable minimization", J. Optim. Theory Appl. 109(3), 2001.
    """
    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    unknown = sorted(set(params) - set(_SINGLE_NODE_KEYS))
    if unknown:
        raise InputError("--param", (unknown[0], f"unknown parameter {unknown[0]!r} for cyclic; valid: "
                                                 f"start, max_passes, order, tol, {', '.join(_SINGLE_NODE_KEYS)}"))
    start = _check_start(instance, start)
    max_passes = _check_count("max_passes", max_passes, 1)
    nodes = _successive.node_order(instance, order)
    single = _single_node_kwargs(params)
    info: dict[str, Any] = {}
    if start is None:
        left = None if time_limit is None else max(0.0, deadline - time.perf_counter())
        res0 = _successive.successive(instance, seed=seed, time_limit=left, order=order, **single)
        start_placement = res0.placement
        info["start"] = {"algorithm": res0.algorithm, "latency": res0.latency, "status": str(res0.status),
                         "runtime_s": res0.runtime_s}
    else:
        start_placement = start
        info["start"] = {"algorithm": "given"}
    ev = IncrementalEvaluator(instance, start_placement)
    tol_ = _check_tol(tol, ev)
    info["start_latency"] = ev.latency
    info.update(_cyclic_sweeps(ev, order=nodes, max_passes=max_passes, tol=tol_, deadline=deadline,
                               single=single))
    timed_out = info["stopped"] == "time_limit" or info["start"].get("status") == str(Status.TIME_LIMIT)
    run_params = {"start": "given" if start is not None else "successive", "max_passes": max_passes,
                  "order": order if isinstance(order, str) else list(order), "tol": tol_, **single,
                  "seed": seed}
    info["pass_order"] = [instance.node_names[n] for n in nodes]
    return make_result(instance, ev.placement(), algorithm="cyclic",
                       status=Status.TIME_LIMIT if timed_out else Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params=run_params, seed=seed,
                       guarantee=_applicable(cyclic.guarantees, instance, run_params), info=info)


cyclic.guarantees = tuple(_inherit(g, "cyclic") for g in _successive.successive.guarantees)  # type: ignore[attr-defined]
