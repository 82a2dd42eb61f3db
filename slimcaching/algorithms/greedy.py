"""Lazy greedy by marginal gain per unit of size (the paper's ``K = 1`` algorithm).

Elements are the triples ``(n, l, e)``: cache expert ``e`` of layer ``l`` at
node ``n``, of size ``s_l`` in node ``n``'s knapsack ``Q_n``.  The greedy adds
the element of largest ``Delta R / s_l`` that still fits, with lazy
(priority-queue) re-evaluation, compares the result with the best single
element, and optionally enumerates the first ``p`` elements.
"""
from __future__ import annotations

import heapq
import itertools
import math
import time

import numpy as np

from ..errors import InputError
from ..instances.model import Instance, Placement
from ..objective import IncrementalEvaluator
from ..result import Guarantee, Result, Status, make_result
from .common import reject_unknown

__all__ = ["greedy", "candidate_elements"]

_TOL = 1e-15


def candidate_elements(instance: Instance) -> np.ndarray:
    """``int64 (k, 3)``: every ``(n, l, e)`` with ``e < E_l``, ``s_l <= Q_n`` and ``n``
    reachable by at least one user (others can never reduce ``T``)."""
    reach = instance.reachable().any(axis=0)                              # (N,)
    fits = instance.expert_size[None, :] <= instance.capacity[:, None]    # (N, L)
    ok = reach[:, None, None] & fits[:, :, None] & instance.valid_mask()[None, :, :]
    return np.argwhere(ok).astype(np.int64)


def _lazy_greedy(ev: IncrementalEvaluator, cand: np.ndarray, size: np.ndarray, coactivation: bool,
                 deadline: float | None) -> tuple[list[int], list[float], int, bool]:
    """Complete ``ev``'s placement greedily; returns (chosen indices, gains, gain evaluations, timed out).

    Stale densities sit in a heap; the top is re-evaluated and taken when it
    still beats the next stale value (exact for submodular ``R``, where stale
    values are upper bounds).  Elements that no longer fit are dropped for
    good (free space only shrinks).  With co-activation (``K >= 2``) a
    zero-gain element may become useful once a partner is cached, so after
    each addition the parked zero-gain elements of the same layer are
    re-evaluated in one vectorised call.
    """
    inst = ev.instance
    free = inst.capacity - ev.used
    gains0 = ev.gains(cand)
    evals = len(cand)
    dens = gains0 / size
    heap = [(-float(dens[i]), int(i)) for i in np.nonzero(dens > _TOL)[0]]
    heapq.heapify(heap)
    parked: dict[int, list[int]] = {}
    if coactivation:
        for i in np.nonzero(dens <= _TOL)[0]:
            parked.setdefault(int(cand[i, 1]), []).append(int(i))
    chosen, gains = [], []
    timed_out = False
    while heap:
        if deadline is not None and time.perf_counter() > deadline:
            timed_out = True
            break
        _, i = heapq.heappop(heap)
        n, l, e = (int(v) for v in cand[i])
        if ev.x[n, l, e] or size[i] > free[n]:
            continue
        g = ev.gain(n, l, e)
        evals += 1
        d = g / size[i]
        if d <= _TOL:
            if coactivation:
                parked.setdefault(l, []).append(i)
            continue
        if heap and d < -heap[0][0]:
            heapq.heappush(heap, (-d, i))
            continue
        ev.add(n, l, e)
        free[n] -= size[i]
        chosen.append(i)
        gains.append(g)
        if coactivation and parked.get(l):
            idx = np.asarray(parked.pop(l), dtype=np.int64)
            idx = idx[size[idx] <= free[cand[idx, 0]]]
            if len(idx):
                dd = ev.gains(cand[idx]) / size[idx]
                evals += len(idx)
                for j, v in zip(idx, dd):
                    if v > _TOL:
                        heapq.heappush(heap, (-float(v), int(j)))
                    else:
                        parked.setdefault(l, []).append(int(j))
    return chosen, gains, evals, timed_out


def _equal_sizes(inst: Instance) -> bool:
    return bool(np.all(inst.expert_size == inst.expert_size[0])) if inst.L else True


def _k1(inst: Instance) -> bool:
    return inst.max_set_size <= 1


greedy_guarantees = (
    Guarantee(
        ratio=1 - 1 / math.e,
        regime="K = 1, one node, partial enumeration p >= 3",
        reference="M. Sviridenko, Oper. Res. Lett. 32(1):41-43, 2004",
        applies=lambda inst, p: _k1(inst) and inst.N == 1 and int(p.get("enumeration", 0)) >= 3,
    ),
    Guarantee(
        ratio=1 - 1 / math.e,
        regime="K = 1, one node, equal expert sizes (cardinality constraint)",
        reference="G. L. Nemhauser, L. A. Wolsey and M. L. Fisher, Math. Program. 14:265-294, 1978",
        applies=lambda inst, p: _k1(inst) and inst.N == 1 and _equal_sizes(inst),
    ),
    Guarantee(
        ratio=(1 - 1 / math.e) / 2,
        regime="K = 1, one node, unequal sizes, best of density greedy and best single element",
        reference=("S. Khuller, A. Moss and J. Naor, Inf. Process. Lett. 70(1):39-45, 1999; "
                   "A. Krause and C. Guestrin, CMU-CALD-05-103, 2005"),
        applies=lambda inst, p: _k1(inst) and inst.N == 1,
    ),
    Guarantee(
        ratio=0.5,
        regime="K = 1, several nodes, equal expert sizes (partition matroid)",
        reference="M. L. Fisher, G. L. Nemhauser and L. A. Wolsey, Math. Program. Study 8:73-87, 1978",
        applies=lambda inst, p: _k1(inst) and inst.N >= 2 and _equal_sizes(inst),
    ),
)


def greedy(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
           enumeration: int = 0, **unknown) -> Result:
    """Lazy density greedy with best-single-element comparison and partial enumeration.

    Problem: maximise ``R(x) = T(empty) - T(x)`` subject to
    ``sum_{l,e} s_l x[n,l,e] <= Q_n`` for every node (``docs/model.md`` section 1).

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Unused (deterministic; ties broken by element index); recorded.
    time_limit : float, optional
        Seconds.  On expiry the best placement found so far is returned with
        status ``time_limit``.
    enumeration : int
        ``p`` in ``0..3``: every feasible set of at most ``p`` elements is
        completed greedily and the best completion is returned.

    Returns
    -------
    Result
        ``info["order"]`` / ``info["gains"]``: the elements added after the
        seed of the winning run, in order, with their gains;
        ``info["seed_set"]``, ``info["runs"]``, ``info["gain_evaluations"]``.

    Notes
    -----
    Guarantees, with ``R*`` the optimal reduction (attached as
    ``greedy.guarantees``):

    1. ``K = 1`` (every activated set a singleton), one node, ``p >= 3``:
       ``R(greedy) >= (1 - 1/e) R*`` -- ``R`` is then a weighted
       facility-location function, monotone submodular, under one knapsack [1]_.
    2. ``K = 1``, one node, all ``s_l`` equal (any ``p``):
       ``R(greedy) >= (1 - 1/e) R*`` (cardinality constraint ``floor(Q/s)``) [2]_.
    3. ``K = 1``, one node, unequal sizes, ``p < 3``: the better of the density
       greedy and the best single element gives
       ``R(greedy) >= (1 - 1/e)/2 R*`` [3]_ [4]_.  (Sharper constants have been
       proved for this rule, e.g. about 0.405 [6]_; we claim only the classical one.)
    4. ``K = 1``, several nodes, all ``s_l`` equal: the knapsacks are a
       partition matroid (node ``n`` takes ``floor(Q_n / s)`` elements) and the
       greedy gives ``R(greedy) >= R* / 2`` [5]_.
    5. ``K = 1``, several nodes, unequal sizes: no bound is claimed for this
       exact rule.
    6. ``K >= 2``: no bound.  Co-activation makes ``R`` non-submodular; lazy
       evaluation then no longer reproduces the plain greedy, and single
       elements whose partners stay in the cloud have gain 0 (the greedy may
       stop with free space).  Enumeration with ``p >= 2`` lets pairs start.

    Running time: one vectorised initial gain pass over the ``k = sum_n
    sum_l E_l`` elements, then ``O(log k)`` heap work plus one incremental
    gain (``O(r K)`` for an expert in ``r`` rows) per re-check; with
    enumeration, ``O(k^p)`` such runs.

    References
    ----------
    .. [1] M. Sviridenko, "A note on maximizing a submodular set function
       subject to a knapsack constraint", Oper. Res. Lett. 32(1), 2004.
    .. [2] G. L. Nemhauser, L. A. Wolsey and M. L. Fisher, "An analysis of
       approximations for maximizing submodular set functions -- I",
       Math. Program. 14, 1978.
    .. [3] S. Khuller, A. Moss and J. Naor, "The budgeted maximum coverage
       problem", Inf. Process. Lett. 70(1), 1999.
    .. [4] A. Krause and C. Guestrin, "A note on the budgeted maximization of
       submodular functions", Tech. Rep. CMU-CALD-05-103, 2005.
    .. [5] M. L. Fisher, G. L. Nemhauser and L. A. Wolsey, "An analysis of
       approximations for maximizing submodular set functions -- II",
       Math. Program. Study 8, 1978.
    .. [6] J. Tang, X. Tang, A. Lim, K. Han, C. Li and J. Yuan, "Revisiting
       modified greedy algorithm for monotone submodular maximization with a
       knapsack constraint", Proc. ACM Meas. Anal. Comput. Syst. 5(1), 2021.
    """
    t0 = time.perf_counter()
    reject_unknown("greedy", unknown, ("enumeration",))
    if isinstance(enumeration, bool) or not isinstance(enumeration, (int, np.integer)) \
            or not 0 <= enumeration <= 3:
        raise InputError("--enumeration", ("", f"enumeration must be an integer in 0..3, got {enumeration!r}"))
    deadline = None if time_limit is None else t0 + float(time_limit)
    params = {"enumeration": int(enumeration), "seed": seed}
    cand = candidate_elements(instance)
    size = instance.expert_size[cand[:, 1]].astype(float) if len(cand) else np.zeros(0)
    coact = not _k1(instance)

    best_red, best = -1.0, None
    runs, evals, timed_out = 0, 0, False
    for seed_set in _seeds(instance, cand, int(enumeration)):
        if runs and deadline is not None and time.perf_counter() > deadline:
            timed_out = True
            break
        ev = IncrementalEvaluator(instance)
        if seed_set:
            ev.apply(add=[tuple(int(v) for v in cand[i]) for i in seed_set])
        chosen, gains, ne, to = _lazy_greedy(ev, cand, size, coact, deadline)
        runs += 1
        evals += ne
        timed_out |= to
        if ev.reduction > best_red:
            best_red, best = ev.reduction, (ev.placement(), list(seed_set), chosen, gains)
    single = None
    if enumeration == 0 and len(cand):
        g0 = IncrementalEvaluator(instance).gains(cand)
        i = int(np.argmax(g0))
        if g0[i] > best_red:
            best_red = float(g0[i])
            best = (Placement.from_elements(instance, [cand[i]]), [i], [], [])
            single = True
        else:
            single = False
    placement, seed_set, chosen, gains = best if best is not None else (instance.empty_placement(), [], [], [])
    applicable = [g for g in greedy_guarantees if g.applies(instance, params)]
    text = max(applicable, key=lambda g: g.ratio).text() if applicable and not timed_out else None
    info = {"order": cand[chosen].tolist(), "gains": gains, "seed_set": cand[seed_set].tolist(),
            "runs": runs, "gain_evaluations": evals, "best_single_won": single, "elements": int(len(cand))}
    return make_result(instance, placement, algorithm="greedy",
                       status=Status.TIME_LIMIT if timed_out else Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params=params, seed=seed, guarantee=text, info=info)


def _seeds(instance: Instance, cand: np.ndarray, p: int):
    """Every set of at most ``p`` candidate indices that fits the capacities (the empty set first)."""
    yield ()
    if p == 0 or len(cand) == 0:
        return
    size = instance.expert_size[cand[:, 1]]
    cap = instance.capacity
    for r in range(1, p + 1):
        for combo in itertools.combinations(range(len(cand)), r):
            used = np.zeros(instance.N, dtype=np.int64)
            np.add.at(used, cand[list(combo), 0], size[list(combo)])
            if np.all(used <= cap):
                yield combo


greedy.guarantees = greedy_guarantees
