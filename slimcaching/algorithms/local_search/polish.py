"""``polish``: first-improvement local search from any start placement."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from ...instances.model import Instance, Placement
from ...objective import IncrementalEvaluator
from ...result import Result, Status, make_result
from .moves import MOVE_KINDS, _local_search
from .options import _check_count, _check_moves, _check_start, _check_tol, _deadline

__all__ = ["polish"]


def polish(instance: Instance, *, start: Placement | None = None, seed: int | None = None,
           time_limit: float | None = None, moves: Any = MOVE_KINDS, max_moves: int | None = None,
           max_sets: int = 64, tol: float | None = None) -> Result:
    """Local search from a placement to a local optimum of eight step kinds.

    Problem: minimise ``T(x)`` (maximise ``R(x)``) subject to
    ``sum_{l,e} s_l x[n,l,e] <= Q_n`` (``docs/model.md`` section 1), starting from
    ``start``.

    Neighbourhood of a placement ``x`` (every member respects the capacities):

    * *add* ``(n, l, e)`` not cached with ``used_n + s_l <= Q_n``;
    * *set*: add at one node ``n`` the two or more missing members of one
      of the ``max_sets`` most probable activated sets ``S`` of a layer
      (:func:`candidate_sets`), if they fit.  With top-``K >= 2`` routing a
      single add often gains exactly zero (its partner stays in the cloud);
      this step is what lets the search leave the empty placement;
    * *spread*: add the members of one candidate set across nodes when no
      single node can hold it (:func:`spread_candidates`: each member goes to
      the best node for the set's users that has room and beats every node
      already caching it);
    * *drop* a cached ``(n, l, e)``;
    * *swap* at one node: drop a cached ``(n, l, e)`` and add an uncached
      ``(n, l', e')`` (any layer) with ``used_n - s_l + s_l' <= Q_n``;
    * *move* a cached ``(n, l, e)`` to a node ``m`` without it, evicting at
      ``m`` at most one cached element ``b`` so that it fits
      (``used_m - s_b + s_l <= Q_m``; no eviction if ``used_m + s_l <= Q_m``).
      Because ``R`` is monotone, a move is never better than the add of
      ``(m, l, e)`` (no eviction) or the swap of ``b`` for ``(m, l, e)`` at
      ``m`` (eviction), so with *add* and *swap* enabled moves are covered by
      those checks and not evaluated separately; a drop never improves but
      is checked.  The local-optimality claim below covers both exactly;
    * *exchange*: cached ``(n1, l1, e1)`` and ``(n2, l2, e2)``, ``n1 != n2``,
      trade nodes (if both fit and neither node already has the other's
      expert).  This is the move between nodes that monotonicity does not
      make redundant;
    * *replace*: at one node, a candidate set's two or more missing members
      in place of the node's cheapest elements of other layers
      (:func:`replace_candidates`), for full nodes where single swaps gain
      nothing because a set needs several members at once.

    Each iteration applies the best improving add if there is one, else the
    best improving set, else the best improving spread; otherwise it sweeps
    the cached elements in a seeded random order, applying for each the best
    of its drop / swap / move steps as soon as it improves (first
    improvement over elements); if the sweep changed nothing, it applies the
    improving exchanges, best first, among pairwise layer-disjoint ones;
    if those change nothing either, the best improving replace.  The search
    stops when none of this changes anything.  A step
    is improving when it increases ``R`` by more than ``tol``.

    Guarantee: ``R(polish(x0)) >= R(x0)`` for every start ``x0``, and on
    return with ``info["stopped"] == "local_optimum"`` no step of the enabled
    kinds increases ``R`` by more than ``tol``.  There is no approximation
    guarantee beyond the start's: if ``R(x0) >= alpha R(opt)`` then
    ``R(polish(x0)) >= alpha R(opt)``.

    Parameters
    ----------
    instance : Instance
    start : Placement, optional
        Feasible starting placement; the empty placement when omitted.
    seed : int, optional
        Seeds the order in which cached elements are scanned (``None``: 0,
        so runs are reproducible by default).
    time_limit : float, optional
        Seconds; when reached the current (never worse) placement is returned
        with status ``time_limit``.
    moves : sequence of str or comma-separated str
        Enabled step kinds, a subset of :data:`MOVE_KINDS` (default all).
    max_moves : int, optional
        Stop after this many accepted moves (status ``heuristic``).
    max_sets : int
        Candidate sets per layer for the *set*, *spread* and *replace* steps
        (default 64).
    tol : float, optional
        Improvement threshold in seconds; default ``1e-12 T(empty)``.

    Returns
    -------
    Result
        ``info`` holds accepted steps per kind, the number of element scans,
        gain queries, the total gain, the start latency and why it stopped.

    Raises
    ------
    InputError
        If ``start`` is not a feasible placement of ``instance`` or a
        parameter is out of range.

    Notes
    -----
    Add gains of all ``N L E`` elements are kept in an array and refreshed
    only for the layers a move touches (one vectorised
    :meth:`~slimcaching.objective.IncrementalEvaluator.gains` call per layer,
    ``O(N E r K)`` for ``r`` routing rows per expert).  A sweep costs one
    vectorised ``losses`` call (again after each applied step) plus, per
    cached element, an
    ``O(N L E)`` mask for swaps into other layers (exact by separability of
    ``T`` over layers) and one evaluation with the element removed of its
    ``E_l + N`` same-layer swaps and moves; evictions from another layer are
    exact by the same separability, same-layer evictions are evaluated one by
    one only when a monotonicity bound says they could win.  The exchange
    pass reuses the relocation values of that scan: for elements of different
    layers the value of an exchange is the sum of two relocations (disjoint
    routing rows), an ``O(C^2)`` array operation for ``C`` cached elements;
    same-layer pairs (about ``C^2 / L``) are evaluated jointly.  *replace*
    is evaluated only at a local optimum of the other kinds.  Every
    accepted step increases ``R`` by more than ``tol``, so the search
    terminates.

    Incremental bookkeeping (none of it changes a step; the tests compare the
    search with the reference that recomputes everything).  A step changes
    the layers of its elements only, and the following values read one
    layer's state alone (separability of ``T`` over layers), so each is kept
    with the version of its layer and recomputed only after that layer
    changed: a cached element's same-layer swap and relocation gains (the
    sweep's batch), the improving same-layer exchanges of a layer, *set* and
    *spread* gains, the *spread* candidates (also keyed by the room of each
    node in units of the layer's size), and the gains of adding each replace
    set's missing members.  Same-layer exchanges are first evaluated in one
    batch (:meth:`~slimcaching.objective.IncrementalEvaluator.gains_of_many`)
    and only those that could exceed ``tol`` exactly; a replace candidate is
    evaluated exactly only when its upper bound (exact add gain minus a lower
    bound on the evictions' joint loss, see ``_replace``) can beat the best so
    far.  So after a step, the work of the next scan is about the cached
    elements and candidates of the layers the step touched, plus
    ``O(C)`` bookkeeping per sweep and an ``O(C^2)`` array pass (in blocks of
    about ``2^20`` pairs) for cross-layer exchanges.

    References
    ----------
    .. [1] E. Aarts and J. K. Lenstra (eds.), "Local Search in Combinatorial
       Optimization", Wiley, 1997.
    .. [2] Q. Chen, X. Chen, K. Huang, "SlimCaching: Edge Caching of
       Mixture-of-Experts for Distributed Inference", arXiv:2507.06567, 2025.
    """
    t0 = time.perf_counter()
    deadline = _deadline(time_limit, t0)
    start = _check_start(instance, start)
    kinds = _check_moves(moves)
    max_moves = _check_count("max_moves", max_moves, 0)
    max_sets = _check_count("max_sets", max_sets, 0)
    ev = IncrementalEvaluator(instance, start)
    tol_ = _check_tol(tol, ev)
    start_latency = ev.latency
    info = _local_search(ev, kinds=kinds, tol=tol_, rng=np.random.default_rng(0 if seed is None else seed),
                         deadline=deadline, max_moves=max_moves, max_sets=max_sets)
    info["start_latency"] = start_latency
    status = Status.TIME_LIMIT if info["stopped"] == "time_limit" else Status.HEURISTIC
    params = {"moves": list(kinds), "max_moves": max_moves, "max_sets": max_sets, "tol": tol_,
              "start": "given" if start is not None else "empty", "seed": seed}
    return make_result(instance, ev.placement(), algorithm="polish", status=status,
                       runtime_s=time.perf_counter() - t0, params=params, seed=seed, info=info)


polish.guarantees = ()  # type: ignore[attr-defined]
