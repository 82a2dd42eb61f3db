"""Algorithms for MoE² edge LLM expert selection (``docs/model.md`` section 2).

Problem: choose ``S_k`` within the latency-feasible experts ``A_k`` of every
category ``k`` to maximise ``f(S) = sum_k lambda_k q_k(S_k)`` subject to
``g(S) = sum_k lambda_k sum_{i in S_k} e_i <= E``; each ``q_k`` is monotone
non-decreasing and is only accessed through a counting oracle.

* :func:`dmo`        the paper's method: discrete monotonic optimisation
  (best-first branch-reduce-and-bound over the binary box), exact;
* :func:`exhaustive` every feasible subset of every category, every combination, exact;
* :func:`exact`      the subset-choice MILP solved by HiGHS
  (:mod:`slimcaching.moe2.milp`), exact;
* :func:`greedy`, :func:`fastest`, :func:`random_selection`: baselines.

Every function has the signature ``f(instance, *, seed=None, time_limit=None,
**params) -> Moe2Result`` and is listed in :data:`MOE2_ALGORITHMS`.  Objective,
energy and feasibility in a result always come from the family's one evaluator,
:func:`slimcaching.moe2.instance.evaluate_moe2`.

When no expert fits (no ``(k, i)`` with ``d_i + a <= D_k`` and
``lambda_k e_i <= E``), the empty selection is the only feasible one: every
algorithm returns it with status ``optimal`` and a message saying so; this is
never an error.
"""
from __future__ import annotations

import heapq
import itertools
import time
from typing import Callable

import numpy as np

from ..errors import InputError
from ..result import Status
from .common import NOTHING_FITS, CountingOracle, Moe2Result, _begin, _check_time_limit, _finish, _usable
from .instance import Moe2Instance, ids_of, within
from .milp import solve_moe2_milp

__all__ = [
    "Moe2Result", "CountingOracle", "MOE2_ALGORITHMS", "get_moe2_algorithm",
    "dmo", "exhaustive", "exact", "greedy", "fastest", "random_selection", "NOTHING_FITS",
]

def _submasks(mask: int, M: int) -> np.ndarray:
    """``int64``: every subset of ``mask`` (ascending)."""
    allm = np.arange(1 << M, dtype=np.int64)
    return allm[(allm & ~np.int64(mask)) == 0]


# ------------------------------------------------------------------ exact: exhaustive search
def exhaustive(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
               **params) -> Moe2Result:
    """Exact optimum by exhaustive search.

    Queries ``q_k`` on every latency-feasible subset of every category, then
    enumerates every combination ``(S_1, ..., S_C)``, keeping the best one that
    meets the energy budget (ties: the first in enumeration order).

    Guarantee
    ---------
    ``f(S) = max { f(T) : T feasible }`` (optimal) whenever it finishes within
    ``time_limit``; otherwise status ``time_limit`` with the best combination seen.

    Notes
    -----
    Oracle calls ``sum_k 2**|A_k|``; time ``O(prod_k 2**|A_k|)``, vectorised over
    the last two categories (chunks of at most ``2**21`` pairs), so practical
    for ``M * C`` up to about 30.
    """
    t0, record, triv = _begin(instance, "exhaustive", params, time_limit, seed)
    if triv is not None:
        return triv
    oracle = CountingOracle(instance)
    C, lam, B = instance.C, instance.weight, instance.energy_budget
    sub_e = instance.subset_energy()
    cand = [_submasks(int(m), instance.M) for m in instance.allowed_masks()]
    val = [lam[k] * oracle.many(k, cand[k]) for k in range(C)]
    en = [lam[k] * sub_e[cand[k]] for k in range(C)]
    best_val, best = -np.inf, None
    deadline = None if time_limit is None else t0 + float(time_limit)
    stopped = False
    tol = B + 1e-9 * max(1.0, abs(B))  # within(): value <= budget + rtol * max(1, |budget|)
    outer = list(range(C - 2)) if C >= 2 else []
    inner = [C - 2, C - 1] if C >= 2 else [0]
    combos = 0
    for idx in itertools.product(*(range(len(cand[k])) for k in outer)):
        base_v = sum(val[k][j] for k, j in zip(outer, idx))
        base_e = sum(en[k][j] for k, j in zip(outer, idx))
        if base_e > tol:
            continue
        if len(inner) == 1:
            v = base_v + val[0]
            ok = base_e + en[0] <= tol
            combos += len(v)
            if ok.any():
                j = int(np.argmax(np.where(ok, v, -np.inf)))
                if v[j] > best_val:
                    best_val, best = v[j], [int(cand[0][j])]
            continue
        a, b = inner
        chunk = max(1, (1 << 21) // len(cand[b]))
        for s in range(0, len(cand[a]), chunk):
            va = val[a][s:s + chunk, None] + val[b][None, :] + base_v
            ok = en[a][s:s + chunk, None] + en[b][None, :] + base_e <= tol
            combos += va.size
            flat = np.where(ok, va, -np.inf).ravel()
            j = int(np.argmax(flat))
            if flat[j] > best_val:
                ja, jb = divmod(j, len(cand[b]))
                best_val = flat[j]
                best = [int(cand[k][jj]) for k, jj in zip(outer, idx)] + [int(cand[a][s + ja]), int(cand[b][jb])]
            if deadline is not None and time.perf_counter() > deadline:
                stopped = True
                break
        if stopped:
            break
    masks = np.array(best, dtype=np.int64) if best is not None else np.zeros(C, dtype=np.int64)
    info = {"combinations": combos, "candidates": [len(c) for c in cand]}
    if stopped:
        return _finish(instance, masks, algorithm="exhaustive", status=Status.TIME_LIMIT, t0=t0, oracle=oracle,
                       params=record, seed=seed, info=info, message="time limit reached; best combination so far")
    res = _finish(instance, masks, algorithm="exhaustive", status=Status.OPTIMAL, t0=t0, oracle=oracle,
                  params=record, seed=seed, info=info)
    res.bound = res.objective
    return res


# ------------------------------------------------------------------ the paper's method: DMO
def dmo(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
        master: str = "mckp", **params) -> Moe2Result:
    """Exact expert selection by discrete monotonic optimisation (branch-reduce-and-bound).

    The decision is a point ``x`` of the binary box ``{0,1}^n`` with one
    coordinate per (category, latency-feasible expert); the objective
    ``f(x) = sum_k lambda_k q_k(x_k)`` and the constraint
    ``g(x) = sum_k lambda_k e . x_k <= E`` are both increasing in ``x`` [1, 2].
    Boxes ``[lo, hi] = {x : lo <= x <= hi}`` are handled with the three
    monotone rules of branch-reduce-and-bound:

    * *bound*: ``f(x) <= f(hi)`` on the box (one oracle call for a new ``hi``);
    * *reduce*: a free coordinate ``j`` with ``g(lo + e_j) > E`` is zero in every
      feasible point of the box, so ``hi_j := 0``; a box with ``g(lo) > E`` is empty;
    * *branch*: split on the free coordinate of largest energy into
      ``x_j = 0`` (``hi - e_j``) and ``x_j = 1`` (``lo + e_j``).

    ``master="mckp"`` (default) exploits that ``f`` and ``g`` are separable
    over categories: each category keeps its own partition of its box
    ``[0, A_k]`` into boxes, each an optimistic item (value ``lambda_k q_k(hi)``,
    energy ``lambda_k e(lo)``), and its evaluated top corners as exact items
    (``lambda_k q_k(hi)``, ``lambda_k e(hi)``).  A master problem, the
    multiple-choice knapsack "one item per category within ``E``", is solved
    exactly (dynamic programming over Pareto fronts); its value is an upper
    bound on the optimum because every feasible ``S_k`` lies in some item's
    box.  If the master's optimum uses exact items only, it is optimal; otherwise
    the boxes it chose are branched and the master is solved again.  Boxes
    dominated by an exact item of their category (``q_k(hi) <= q_k(T)`` and
    ``e(lo) >= e(T)``) are discarded.  ``master="joint"`` is plain best-first
    branch-reduce-and-bound over the joint box, stopping at the first box
    (largest ``f(hi)``) whose top corner is feasible.

    Parameters
    ----------
    master : {"mckp", "joint"}

    Guarantee
    ---------
    ``f(S) = max { f(T) : T feasible }`` on every instance (both masters are
    exact: finite lattice, valid bounds), whenever it finishes within
    ``time_limit``; otherwise status ``time_limit`` with a feasible incumbent
    and ``bound`` such that ``f(S) <= OPT <= bound``.

    Notes
    -----
    Oracle calls are memoised, so at most ``sum_k 2**|A_k|`` (what exhaustive
    search uses) and in practice far fewer: only top corners of boxes whose
    bound is still competitive are queried.  The master DP costs
    ``O(sum_k F n_k)`` per round for Pareto fronts of size ``F`` and ``n_k``
    non-dominated items; the number of rounds is exponential in the worst
    case (the problem contains the 0-1 knapsack).

    References
    ----------
    .. [1] H. Tuy, "Monotonic optimization: problems and solution approaches",
       SIAM Journal on Optimization 11(2), 2000.
    .. [2] H. Tuy, M. Minoux, N. T. Hoai-Phuong, "Discrete monotonic
       optimization with application to a discrete location problem", SIAM
       Journal on Optimization 17(1), 2006.
    .. [3] L. Jin, Z. Chen, Y. Liu, et al., "MoE²: Optimizing collaborative
       inference for edge large language models", arXiv:2501.09410, 2025.
    .. [4] H. Kellerer, U. Pferschy, D. Pisinger, "Knapsack Problems",
       Springer, 2004, ch. 11 (multiple-choice knapsack).
    """
    if master not in ("mckp", "joint"):
        raise InputError("--param master", ("", f"must be 'mckp' or 'joint', got {master!r}"))
    t0, record, triv = _begin(instance, "dmo", params, time_limit, seed, valid=("master",), master=master)
    if triv is not None:
        return triv
    oracle = CountingOracle(instance)
    deadline = None if time_limit is None else t0 + float(time_limit)
    run = _dmo_mckp if master == "mckp" else _dmo_joint
    masks, status, bound, info = run(instance, oracle, deadline)
    message = "" if status is Status.OPTIMAL else "time limit reached; best feasible selection found so far"
    res = _finish(instance, masks, algorithm="dmo", status=status, t0=t0, oracle=oracle, params=record,
                  seed=seed, bound=bound, info=info, message=message)
    if status is Status.OPTIMAL:
        res.bound = res.objective
    return res


def _pareto(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices of a Pareto front (energy ``w`` down, value ``v`` up), in increasing energy.

    Keeps every entry whose value beats all entries of smaller energy (entries of
    equal energy may both be kept; harmless for the master's optimum).
    """
    order = np.argsort(w, kind="stable")
    vs = v[order]
    keep = np.empty(len(order), dtype=bool)
    if len(order):
        keep[0] = True
        keep[1:] = vs[1:] > np.maximum.accumulate(vs)[:-1]
    return order[keep]


class _Items:
    """One category's items for the DMO master: boxes ``[lo, hi]`` and exact points (``lo == hi``)."""

    def __init__(self) -> None:
        self.n = 0
        self.lo = np.zeros(64, dtype=np.int64)
        self.hi = np.zeros(64, dtype=np.int64)
        self.v = np.zeros(64)
        self.w = np.zeros(64)
        self.box = np.zeros(64, dtype=bool)
        self.alive = np.zeros(64, dtype=bool)
        self.exact: set[int] = set()

    def add(self, lo: int, hi: int, v: float, w: float, box: bool) -> None:
        if self.n == len(self.v):
            for name in ("lo", "hi", "v", "w", "box", "alive"):
                a = getattr(self, name)
                setattr(self, name, np.concatenate([a, np.zeros_like(a)]))
        n = self.n
        self.lo[n], self.hi[n], self.v[n], self.w[n], self.box[n], self.alive[n] = lo, hi, v, w, box, True
        self.n += 1

    def front(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Alive items on the category's own Pareto front: ``(index, w, v, is_box)``.

        Boxes dominated by an exact item (``v <= v_T`` and ``w >= w_T``) are killed for good.
        """
        alive = np.flatnonzero(self.alive[: self.n])
        v, w, box = self.v[alive], self.w[alive], self.box[alive]
        srt = np.lexsort((box, -v, w))
        ex_best = np.maximum.accumulate(np.where(box[srt], -np.inf, v[srt]))
        dead = box[srt] & (v[srt] <= ex_best)
        self.alive[alive[srt[dead]]] = False
        live = srt[~dead]  # by energy, then value down, exact items before boxes
        vs = v[live]
        keep = np.ones(len(live), dtype=bool)
        keep[1:] = vs[1:] > np.maximum.accumulate(vs)[:-1]
        f = live[keep]
        return alive[f], w[f], v[f], box[f].astype(np.int64)


def _mckp(fronts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], tol: float):
    """Exact multiple-choice knapsack over the fronts: returns ``(value, boxes used, item index per category)``."""
    W, V, NB = np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.int64)
    back = []
    for idx, w, v, nb in fronts:
        W2 = (W[:, None] + w[None, :]).ravel()
        ok = np.flatnonzero(W2 <= tol)
        V2 = (V[:, None] + v[None, :]).ravel()[ok]
        N2 = (NB[:, None] + nb[None, :]).ravel()[ok]
        f = _pareto(W2[ok], V2)
        keep = ok[f]
        back.append((keep // len(w), idx[keep % len(w)]))
        W, V, NB = W2[keep], V2[f], N2[f]
    best = int(np.lexsort((NB, -V))[0])
    choice = [0] * len(fronts)
    j = best
    for k in range(len(fronts) - 1, -1, -1):
        parent, item = back[k]
        choice[k] = int(item[j])
        j = int(parent[j])
    return float(V[best]), int(NB[best]), choice, float(W[best])


def _dmo_mckp(instance: Moe2Instance, oracle: CountingOracle, deadline: float | None):
    """Per-category boxes + exact multiple-choice-knapsack master (see :func:`dmo`)."""
    C, B = instance.C, instance.energy_budget
    tol = B + 1e-9 * max(1.0, abs(B))
    lam = [float(x) for x in instance.weight]
    e = instance.energy
    sub_e = instance.subset_energy()
    order = np.argsort(-e, kind="stable").tolist()  # branching: most energy first
    items = [_Items() for _ in range(C)]

    def add_exact(k: int, m: int) -> None:
        if m not in items[k].exact and lam[k] * sub_e[m] <= tol:
            items[k].exact.add(m)
            items[k].add(m, m, lam[k] * oracle(k, m), lam[k] * sub_e[m], False)

    def add_box(k: int, lo: int, hi: int) -> int | None:
        """Reduce and add the box; its item index, or None when it is empty or a single point."""
        w_lo = lam[k] * sub_e[lo]
        if w_lo > tol:
            return None
        for i in order:  # reduce: free experts that cannot fit on top of lo
            if hi >> i & 1 and not lo >> i & 1 and w_lo + lam[k] * e[i] > tol:
                hi &= ~(1 << i)
        add_exact(k, hi)
        if hi == lo:
            return None
        items[k].add(lo, hi, lam[k] * oracle(k, hi), w_lo, True)
        return items[k].n - 1

    for k, a in enumerate(instance.allowed_masks()):
        add_exact(k, 0)
        add_box(k, 0, int(a))
    rounds = splits = 0
    while True:
        rounds += 1
        bound, n_boxes, choice, _ = _mckp([it.front() for it in items], tol)
        info = {"rounds": rounds, "nodes": splits, "items": sum(it.n for it in items)}
        if n_boxes == 0:
            return [int(items[k].hi[choice[k]]) for k in range(C)], Status.OPTIMAL, bound, info
        if deadline is not None and time.perf_counter() > deadline:
            return _best_exact(items, tol), Status.TIME_LIMIT, bound, info
        for k, it in enumerate(items):  # branch every box the master chose
            c = choice[k]
            if not it.box[c]:
                continue
            lo, hi = int(it.lo[c]), int(it.hi[c])
            i = next(i for i in order if hi >> i & 1 and not lo >> i & 1)
            it.alive[c] = False
            splits += 1
            add_box(k, lo, hi & ~(1 << i))
            add_box(k, lo | 1 << i, hi)


def _best_exact(items: list[_Items], tol: float) -> list[int]:
    """Best combination of exact items within the budget (the incumbent at a time limit)."""
    fronts = []
    for it in items:
        ex = np.flatnonzero(~it.box[: it.n])
        f = _pareto(it.w[ex], it.v[ex])
        fronts.append((ex[f], it.w[ex][f], it.v[ex][f], np.zeros(len(f), dtype=np.int64)))
    _, _, choice, _ = _mckp(fronts, tol)
    return [int(it.hi[c]) for it, c in zip(items, choice)]


def _dmo_joint(instance: Moe2Instance, oracle: CountingOracle, deadline: float | None):
    """Best-first branch-reduce-and-bound over the joint box (see :func:`dmo`)."""
    C, B = instance.C, instance.energy_budget
    lam = [float(x) for x in instance.weight]
    e = [float(x) for x in instance.energy]
    sub_e = instance.subset_energy()
    tol = B + 1e-9 * max(1.0, abs(B))
    # coordinates (k, i), the most energy-hungry first: branching order
    coords = sorted(((lam[k] * e[i], k, i) for k in range(C) for i in ids_of(int(instance.allowed_masks()[k]))),
                    reverse=True)

    def reduce(lo: list[int], hi: list[int], g_lo: float) -> None:
        for w, k, i in coords:
            if hi[k] >> i & 1 and not lo[k] >> i & 1 and g_lo + w > tol:
                hi[k] &= ~(1 << i)

    def bound(hi: list[int]) -> float:
        return sum(lam[k] * oracle(k, hi[k]) for k in range(C))

    def g(masks: list[int]) -> float:
        return sum(lam[k] * sub_e[masks[k]] for k in range(C))

    lo0, hi0 = [0] * C, [int(m) for m in instance.allowed_masks()]
    reduce(lo0, hi0, 0.0)
    tick = itertools.count()
    heap = [(-bound(hi0), g(hi0), next(tick), lo0, hi0, 0.0)]
    nodes = 0
    while heap:
        neg_ub, g_hi, _, lo, hi, g_lo = heapq.heappop(heap)
        nodes += 1
        if g_hi <= tol:
            return hi, Status.OPTIMAL, -neg_ub, {"nodes": nodes, "open_nodes": len(heap)}
        if deadline is not None and time.perf_counter() > deadline:
            heapq.heappush(heap, (neg_ub, g_hi, next(tick), lo, hi, g_lo))
            break
        # branch on the first free coordinate in energy order (one exists: g(hi) > E >= g(lo))
        for w, k, i in coords:
            if hi[k] >> i & 1 and not lo[k] >> i & 1:
                break
        # x_j = 0: same lo, hi without j (no new reduction: g(lo) unchanged)
        hi0 = list(hi)
        hi0[k] &= ~(1 << i)
        heapq.heappush(heap, (-bound(hi0), g(hi0), next(tick), lo, hi0, g_lo))
        # x_j = 1: lo with j, then reduce hi against the new g(lo)
        lo1, hi1 = list(lo), list(hi)
        lo1[k] |= 1 << i
        g1 = g_lo + w
        reduce(lo1, hi1, g1)
        heapq.heappush(heap, (-bound(hi1), g(hi1), next(tick), lo1, hi1, g1))
    # time limit: best feasible lower corner among the most promising open boxes
    top = heapq.nsmallest(64, heap)
    cand = max((item[3] for item in top), key=lambda lo: sum(lam[k] * oracle(k, lo[k]) for k in range(C)))
    return cand, Status.TIME_LIMIT, -top[0][0], {"nodes": nodes, "open_nodes": len(heap)}


# ------------------------------------------------------------------ exact: MILP
def exact(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
          **params) -> Moe2Result:
    """Exact optimum of the subset-choice MILP, solved by HiGHS (see :mod:`slimcaching.moe2.milp`);
    :func:`greedy` is the selection returned if HiGHS stops with nothing better."""
    _check_time_limit(time_limit)
    return solve_moe2_milp(instance, seed=seed, time_limit=time_limit,
                           heuristic=lambda budget: greedy(instance, seed=seed, time_limit=budget), **params)


# ------------------------------------------------------------------ baselines
def greedy(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
           **params) -> Moe2Result:
    """Greedy by quality gain per unit of energy, compared with the best single expert.

    Repeatedly adds the (category, expert) pair of largest
    ``lambda_k (q_k(S_k + i) - q_k(S_k)) / (lambda_k e_i)`` among pairs that keep
    both budgets and have a positive gain; returns the better of that and the
    best feasible single pair.

    Guarantee
    ---------
    None for general monotone ``q_k`` (status ``heuristic``).  When every
    ``q_k`` is submodular (as in :func:`~slimcaching.moe2.generator.generate_moe2`)
    the objective is monotone submodular under one knapsack constraint and this
    rule gives ``f(S) >= (1 - 1/e) / 2 * OPT`` [1, 2].

    Notes
    -----
    ``O(n^2)`` oracle queries for ``n`` latency-feasible pairs; only the category
    changed in a step is re-queried.

    References
    ----------
    .. [1] A. Krause, C. Guestrin, "A note on the budgeted maximization of
       submodular functions", CMU-CALD-05-103, 2005.
    .. [2] M. Sviridenko, "A note on maximizing a submodular set function
       subject to a knapsack constraint", Operations Research Letters 32(1), 2004.
    """
    t0, record, triv = _begin(instance, "greedy", params, time_limit, seed)
    if triv is not None:
        return triv
    oracle = CountingOracle(instance)
    C, B = instance.C, instance.energy_budget
    lam, e = instance.weight, instance.energy
    usable = _usable(instance)
    pairs = [(k, i) for k in range(C) for i in ids_of(int(usable[k]))]
    S = [0] * C
    cur = [oracle(k, 0) for k in range(C)]
    used = 0.0
    order: list[tuple[int, int]] = []
    deadline = None if time_limit is None else t0 + float(time_limit)
    stopped = False
    while True:
        best, best_ratio = None, 0.0
        for k, i in pairs:
            if S[k] >> i & 1 or not within(used + lam[k] * e[i], B):
                continue
            gain = lam[k] * (oracle(k, S[k] | 1 << i) - cur[k])
            if gain > 0 and gain / (lam[k] * e[i]) > best_ratio:
                best, best_ratio = (k, i), gain / (lam[k] * e[i])
        if best is None:
            break
        k, i = best
        S[k] |= 1 << i
        cur[k] = oracle(k, S[k])
        used += lam[k] * e[i]
        order.append(best)
        if deadline is not None and time.perf_counter() > deadline:
            stopped = True
            break
    value = float(np.dot(lam, cur))
    single, single_val = None, value
    base = float(sum(lam[k] * oracle(k, 0) for k in range(C)))
    for k, i in pairs:
        v = base + lam[k] * (oracle(k, 1 << i) - oracle(k, 0))
        if v > single_val:
            single, single_val = (k, i), v
    masks = list(S)
    if single is not None:
        masks = [0] * C
        masks[single[0]] = 1 << single[1]
    info = {"order": [list(p) for p in order], "best_single_used": single is not None}
    return _finish(instance, masks, algorithm="greedy", status=Status.TIME_LIMIT if stopped else Status.HEURISTIC,
                   t0=t0, oracle=oracle, params=record, seed=seed, info=info,
                   message="time limit reached" if stopped else "")


def fastest(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
            **params) -> Moe2Result:
    """Fastest-feasible: each category takes its fastest expert that fits both budgets.

    Categories are served in decreasing weight order; each takes the expert
    of smallest latency ``d_i`` with ``d_i + a <= D_k`` whose energy still fits
    the remaining budget (none if no expert does).  Quality is never queried.

    Guarantee
    ---------
    None (status ``heuristic``).  ``O(C M log M)``, no oracle calls.
    """
    t0, record, triv = _begin(instance, "fastest", params, time_limit, seed)
    if triv is not None:
        return triv
    allowed = instance.allowed_masks()
    masks = [0] * instance.C
    used = 0.0
    for k in np.argsort(-instance.weight, kind="stable"):
        for i in np.argsort(instance.latency, kind="stable"):
            w = instance.weight[k] * instance.energy[i]
            if allowed[k] >> int(i) & 1 and within(used + w, instance.energy_budget):
                masks[k] = 1 << int(i)
                used += w
                break
    return _finish(instance, masks, algorithm="fastest", status=Status.HEURISTIC, t0=t0, oracle=None,
                   params=record, seed=seed)


def random_selection(instance: Moe2Instance, *, seed: int | None = None, time_limit: float | None = None,
                     **params) -> Moe2Result:
    """Random maximal selection: latency-feasible pairs in a seeded random order, each kept if energy allows.

    Guarantee
    ---------
    None (status ``heuristic``).  ``O(C M)``, no oracle calls; the seed is
    recorded (``None`` draws fresh entropy, recorded in ``info``).
    """
    t0, record, triv = _begin(instance, "random", params, time_limit, seed)
    if triv is not None:
        return triv
    seed_used = int(np.random.SeedSequence().entropy % (2 ** 63)) if seed is None else int(seed)
    rng = np.random.default_rng(seed_used)
    allowed = instance.allowed_masks()
    pairs = [(k, i) for k in range(instance.C) for i in ids_of(int(allowed[k]))]
    masks = [0] * instance.C
    used = 0.0
    for j in rng.permutation(len(pairs)):
        k, i = pairs[j]
        w = instance.weight[k] * instance.energy[i]
        if within(used + w, instance.energy_budget):
            masks[k] |= 1 << i
            used += w
    return _finish(instance, masks, algorithm="random", status=Status.HEURISTIC, t0=t0, oracle=None,
                   params=record, seed=seed, info={"seed_used": seed_used})


MOE2_ALGORITHMS: dict[str, Callable[..., Moe2Result]] = {
    "dmo": dmo,
    "exhaustive": exhaustive,
    "exact": exact,
    "greedy": greedy,
    "fastest": fastest,
    "random": random_selection,
}
"""Name -> function; every one is ``f(instance, *, seed=None, time_limit=None, **params) -> Moe2Result``."""

EXACT_METHODS = ("dmo", "exhaustive", "exact")


def get_moe2_algorithm(name: str) -> Callable[..., Moe2Result]:
    """The MoE² algorithm called ``name``; unknown names list the valid ones."""
    if name not in MOE2_ALGORITHMS:
        raise InputError("--algorithm", ("", f"unknown MoE² algorithm {name!r}; valid: {', '.join(MOE2_ALGORITHMS)}"))
    return MOE2_ALGORITHMS[name]
