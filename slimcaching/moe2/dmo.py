"""Discrete monotonic optimisation for MoE² expert selection: three ways to refine the binary box.

Problem (``docs/model.md`` section 2): choose ``S_k`` within the usable experts
``U_k`` of every category to maximise ``f(S) = sum_k lambda_k q_k(S_k)``
subject to ``g(S) = sum_k lambda_k eps_k(S_k) <= E``.  The decision is a point of
the binary box with one coordinate per (category, usable expert).  A box
``[lo, hi] = {x : lo <= x <= hi}`` needs two numbers:

* an upper bound on ``f`` over the box: ``q_k(hi)`` when ``q_k`` is proven
  monotone, else the quality model's box bound
  (:meth:`~slimcaching.moe2.quality.QualityModel.upper`), both through the
  counting oracle;
* a lower bound on ``g`` over the box: ``lambda_k e(lo)`` under pool accounting
  (``e`` is additive, hence monotone), else :func:`routed_energy_lower`.

Masters (``dmo(master=...)``, :mod:`slimcaching.moe2.algorithms`):

* :func:`dmo_mckp` -- per-category boxes combined by an exact multiple-choice
  knapsack (the default);
* :func:`dmo_joint` -- best-first branch-reduce-and-bound on the joint box;
* :func:`dmo_polyblock` -- Tuy's polyblock outer approximation.

Each returns ``(masks, status, bound, info)`` and never raises at a deadline.
"""
from __future__ import annotations

import heapq
import itertools
import time
import numpy as np

from ..result import Status
from .bits import ids_of
from .common import CountingOracle, _usable
from .instance import Moe2Instance

__all__ = ["dmo_mckp", "dmo_joint", "dmo_polyblock", "mckp", "pareto", "routed_energy_lower", "OPT_RTOL"]

_THETA = 1.0
OPT_RTOL = 1e-9
"""Relative tolerance of every optimality test: a bound within it of the incumbent closes the gap.

The bound then reported is the incumbent plus this tolerance, so it is proven."""


def _tol(E: float) -> float:
    return E + 1e-9 * max(1.0, abs(E))  # within(): value <= budget + rtol * max(1, |budget|)


def _closes(bound: float, incumbent: float) -> bool:
    return bound <= incumbent + OPT_RTOL * max(1.0, abs(incumbent))


# ------------------------------------------------------------------ energy bounds of a box
def routed_energy_lower(instance: Moe2Instance, k: int, lo: int, hi: int) -> float:
    """A lower bound on ``eps_k(T)`` over ``lo <= T <= hi`` under per-query accounting with a top-k gate.

    On a query ``q`` the top-k gate runs ``R_q(T)``, the ``top_k`` experts of ``T``
    of largest logit.  An expert of ``lo`` ranked among the first ``top_k`` of
    ``hi`` ranks at least as high in ``T`` (a subset of ``hi``), so it runs; and
    at least ``r = min(top_k, |lo|)`` experts of ``hi`` run.  So ``eps_q(T)`` is at
    least the energy of those sure experts plus the cheapest remaining ones
    up to ``r``; the bound is the mean over the queries.
    """
    model = instance.quality
    lo_ids, hi_ids = ids_of(lo), ids_of(hi)
    if not lo_ids:
        return 0.0
    e = instance.energy
    r = min(model.top_k, len(lo_ids))
    z = model.logits[k][:, hi_ids]
    order = np.argsort(-z, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(len(hi_ids))[None, :], axis=1)
    in_lo = np.isin(hi_ids, lo_ids)
    sure = (rank < model.top_k) & in_lo[None, :]
    eh = e[hi_ids]
    base = (sure * eh[None, :]).sum(axis=1)
    need = r - sure.sum(axis=1)
    rest = np.sort(np.where(sure, np.inf, eh[None, :]), axis=1)
    csum = np.concatenate([np.zeros((len(z), 1)), np.cumsum(np.where(np.isfinite(rest), rest, 0.0), axis=1)], axis=1)
    extra = np.take_along_axis(csum, np.maximum(need, 0)[:, None], axis=1)[:, 0]
    return float((base + extra).mean()) * (1 - 1e-12)


class _Space:
    """Bounds of boxes for one instance: value upper bounds and energy lower bounds, weighted by ``lambda_k``."""

    def __init__(self, instance: Moe2Instance, oracle: CountingOracle):
        self.instance, self.oracle = instance, oracle
        self.C = instance.C
        self.lam = [float(x) for x in instance.weight]
        self.e = instance.energy
        self.tol = _tol(instance.energy_budget)
        self.additive = not oracle.routed  # pool accounting: eps = e(S), additive and monotone
        self.order = np.argsort(-self.e, kind="stable").tolist()  # branching: most energy first
        self.start = [int(m) for m in _usable(instance)]

    def value(self, k: int, m: int) -> float:
        return self.lam[k] * self.oracle(k, m)

    def upper(self, k: int, lo: int, hi: int) -> float:
        return self.lam[k] * self.oracle.upper(k, lo, hi)

    def energy(self, k: int, m: int) -> float:
        return self.lam[k] * self.oracle.energy(k, m)

    def energy_lower(self, k: int, lo: int, hi: int) -> float:
        if self.additive:
            return self.lam[k] * float(self.instance.mask_energy(np.array([lo]))[0])
        return self.lam[k] * routed_energy_lower(self.instance, k, lo, hi)

    def reduce(self, k: int, lo: int, hi: int, w_lo: float) -> int:
        """Drop from ``hi`` every free expert that cannot join ``lo`` within ``E`` (additive energy only)."""
        if self.additive:
            for i in self.order:
                if hi >> i & 1 and not lo >> i & 1 and w_lo + self.lam[k] * self.e[i] > self.tol:
                    hi &= ~(1 << i)
        return hi


# ------------------------------------------------------------------ the multiple-choice knapsack master
def pareto(w: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Indices of a Pareto front (energy ``w`` down, value ``v`` up), in increasing energy.

    Keeps every entry whose value beats all entries of smaller or equal energy
    listed before it.  ``w`` made of a few sorted runs sorts in near-linear time.
    """
    order = np.argsort(w, kind="stable")
    vs = v[order]
    keep = np.empty(len(order), dtype=bool)
    if len(order):
        keep[0] = True
        keep[1:] = vs[1:] > np.maximum.accumulate(vs)[:-1]
    return order[keep]


def _forward(fronts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], tol: float, floor: float):
    """The dynamic programme of :func:`mckp`: ``(states, back)`` with ``states[j] = (W, V, NB)`` after the
    first ``j`` categories (Pareto front by ``W``), or ``None`` when nothing can exceed ``floor``."""
    vmax = np.array([float(f[2].max()) for f in fronts])
    rest = np.concatenate([np.cumsum(vmax[::-1])[::-1][1:], [0.0]])  # best of the categories after k
    W, V, NB = np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.int64)
    states, back = [(W, V, NB)], []
    for k, (idx, w, v, nb) in enumerate(fronts):
        W2 = (w[:, None] + W[None, :]).ravel()  # one sorted run per item: the sort below is near-linear
        V2 = (v[:, None] + V[None, :]).ravel()
        ok = np.flatnonzero((W2 <= tol) & (V2 + rest[k] > floor))
        if not len(ok):
            return None
        keep = ok[pareto(W2[ok], V2[ok])]
        back.append((keep % len(W), idx[keep // len(W)]))
        W, V, NB = W2[keep], V2[keep], (nb[:, None] + NB[None, :]).ravel()[keep]
        states.append((W, V, NB))
    return states, back


def mckp(fronts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], tol: float,
         floor: float = -np.inf) -> tuple[float, int, list[int], float] | None:
    """Exact multiple-choice knapsack: one item per category, total energy within ``tol``, maximum value.

    Parameters
    ----------
    fronts : per category ``(index, w, v, boxes)``, each sorted by ``w``; ``boxes`` counts boxes (0 or 1).
    tol : float          energy capacity.
    floor : float        only solutions of value above ``floor`` are wanted.

    Returns
    -------
    ``(value, boxes used, item index per category, energy)`` of an optimum (fewest
    boxes among equal values), or ``None`` when no solution exceeds ``floor``.

    Notes
    -----
    Dynamic programming over Pareto fronts of ``(energy, value)``.  A partial
    solution is dropped when its value plus the largest value of every
    remaining category cannot exceed ``floor``, so an optimum above ``floor``
    is never lost.
    """
    run = _forward(fronts, tol, floor)
    if run is None:
        return None
    states, back = run
    W, V, NB = states[-1]
    best = int(np.lexsort((NB, -V))[0])
    choice = [0] * len(fronts)
    j = best
    for k in range(len(fronts) - 1, -1, -1):
        parent, item = back[k]
        choice[k] = int(item[j])
        j = int(parent[j])
    return float(V[best]), int(NB[best]), choice, float(W[best])


def completions(fronts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], tol: float,
                floor: float) -> tuple[float, list[np.ndarray]] | None:
    """For every item, the best master value of a solution that uses it.

    Returns ``(master optimum, [best per item of each front])`` or ``None`` when
    no solution exceeds ``floor``.  An item whose best does not exceed
    ``floor`` is in no solution above it.  Computed from the forward states
    before category ``k`` and the backward states after it: for an item
    ``(w, v)``, ``v + max_p (V_p + B(tol - w - W_p))`` with ``B(c)`` the best
    backward value within energy ``c``.
    """
    fwd = _forward(fronts, tol, floor)
    if fwd is None:
        return None
    bwd = _forward(fronts[::-1], tol, floor)
    if bwd is None:  # cannot happen when the forward pass found a solution; kept for safety
        return None
    C = len(fronts)
    out = []
    for k, (_, w, v, _) in enumerate(fronts):
        Wp, Vp, _ = fwd[0][k]
        Ws, Vs, _ = bwd[0][C - 1 - k]
        caps = tol - w[:, None] - Wp[None, :]
        j = np.searchsorted(Ws, caps, side="right") - 1
        tail = np.where(j >= 0, Vs[np.maximum(j, 0)], -np.inf)
        out.append(v + (Vp[None, :] + tail).max(axis=1))
    return float(fwd[0][-1][1].max()), out


class _Items:
    """One category's items for the DMO master: boxes ``[lo, hi]`` (bounds) and exact points (``lo == hi``)."""

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

    def front(self, exact_only: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Alive items on the category's own Pareto front: ``(index, w, v, is_box)`` by increasing ``w``.

        Boxes dominated by an exact item (``v <= v_T`` and ``w >= w_T``) are killed for good.
        """
        alive = np.flatnonzero(self.alive[: self.n] & (~self.box[: self.n] if exact_only else True))
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


def dmo_mckp(instance: Moe2Instance, oracle: CountingOracle, deadline: float | None):
    """Per-category boxes and an exact multiple-choice-knapsack master (``dmo(master="mckp")``).

    Each round: (1) the best combination of *exact* items (evaluated
    subsets) is the incumbent ``I``; (2) the master -- one item per category,
    boxes counted at (upper bound, energy lower bound) -- is solved exactly
    among solutions worth more than ``I``; (3) if there is none, ``I`` is
    optimal (every feasible selection lies in some item's box, so the master
    bounds it); otherwise the boxes of the master's optimum are branched and
    reduced.  Partial solutions of the master that cannot beat ``I`` are
    pruned inside its dynamic programme, which keeps rounds cheap when there
    are many categories.
    """
    sp = _Space(instance, oracle)
    C, tol = sp.C, sp.tol
    items = [_Items() for _ in range(C)]

    def add_exact(k: int, m: int) -> None:
        if m not in items[k].exact:
            items[k].exact.add(m)
            w = sp.energy(k, m)
            if w <= tol:
                items[k].add(m, m, sp.value(k, m), w, False)

    def add_box(k: int, lo: int, hi: int) -> None:
        """Reduce and add the box (its top corner as an exact point too); nothing when it is empty."""
        w_lo = sp.energy_lower(k, lo, hi)
        if w_lo > tol:
            return
        hi = sp.reduce(k, lo, hi, w_lo)
        add_exact(k, hi)
        if hi != lo:
            items[k].add(lo, hi, sp.upper(k, lo, hi), w_lo, True)

    for k in range(C):
        add_exact(k, 0)
        add_box(k, 0, sp.start[k])
    rounds = splits = 0
    incumbent, inc_value = [0] * C, -np.inf
    while True:
        rounds += 1
        ex = mckp([it.front(exact_only=True) for it in items], tol)
        if ex is not None and ex[0] > inc_value:
            inc_value, incumbent = ex[0], [int(items[k].hi[c]) for k, c in enumerate(ex[2])]
        floor = inc_value + OPT_RTOL * max(1.0, abs(inc_value))
        fronts = [it.front() for it in items]
        comp = completions(fronts, tol, floor)
        info = {"rounds": rounds, "nodes": splits, "items": sum(it.n for it in items)}
        if comp is None:  # nothing beats the incumbent by more than the tolerance
            return incumbent, Status.OPTIMAL, floor, info
        bound, best = comp
        if deadline is not None and time.perf_counter() > deadline:
            return incumbent, Status.TIME_LIMIT, bound, info
        cut = bound - _THETA * (bound - floor)
        for k, it in enumerate(items):
            idx, box = fronts[k][0], fronts[k][3].astype(bool)
            it.alive[idx[best[k] <= floor]] = False  # in no solution above the incumbent, now or later
            for c in idx[box & (best[k] > floor) & (best[k] >= cut)]:  # branch every box that may still hold a better point
                lo, hi = int(it.lo[c]), int(it.hi[c])
                i = next(i for i in sp.order if hi >> i & 1 and not lo >> i & 1)
                it.alive[c] = False
                splits += 1
                add_box(k, lo, hi & ~(1 << i))
                add_box(k, lo | 1 << i, hi)


# ------------------------------------------------------------------ best-first on the joint box
def dmo_joint(instance: Moe2Instance, oracle: CountingOracle, deadline: float | None):
    """Best-first branch-reduce-and-bound over the joint box (``dmo(master="joint")``).

    Boxes are ordered by their upper bound; a popped box whose top corner is
    feasible and whose bound is attained there (always, for a proven-monotone
    ``q``) is optimal.  Otherwise its top corner is evaluated as an incumbent
    and the box is split on its free coordinate of most energy.
    """
    sp = _Space(instance, oracle)
    C, tol, lam = sp.C, sp.tol, sp.lam
    coords = sorted(((lam[k] * float(sp.e[i]), k, i) for k in range(C) for i in ids_of(sp.start[k])), reverse=True)

    def g_lo(lo: list[int], hi: list[int]) -> float:
        return sum(sp.energy_lower(k, lo[k], hi[k]) for k in range(C))

    def reduce(lo: list[int], hi: list[int], g: float) -> None:
        if sp.additive:
            for w, k, i in coords:
                if hi[k] >> i & 1 and not lo[k] >> i & 1 and g + w > tol:
                    hi[k] &= ~(1 << i)

    def bound(lo: list[int], hi: list[int]) -> float:
        return sum(sp.upper(k, lo[k], hi[k]) for k in range(C))

    tick = itertools.count()
    heap: list = []
    inc, inc_value = [0] * C, sum(sp.value(k, 0) for k in range(C))

    def push(lo: list[int], hi: list[int]) -> None:
        g = g_lo(lo, hi)
        if g > tol:
            return
        reduce(lo, hi, g)
        heapq.heappush(heap, (-bound(lo, hi), next(tick), lo, hi))

    push([0] * C, list(sp.start))
    nodes = 0
    while heap:
        neg_ub, _, lo, hi = heapq.heappop(heap)
        if _closes(-neg_ub, inc_value):  # every open box is bounded by -neg_ub
            return inc, Status.OPTIMAL, max(inc_value, -neg_ub), {"nodes": nodes, "open_nodes": len(heap)}
        nodes += 1
        g_hi = sum(sp.energy(k, hi[k]) for k in range(C))
        if g_hi <= tol:
            v_hi = sum(sp.value(k, hi[k]) for k in range(C))
            if v_hi > inc_value:
                inc, inc_value = list(hi), v_hi
            if _closes(-neg_ub, v_hi):
                return hi, Status.OPTIMAL, max(v_hi, -neg_ub), {"nodes": nodes, "open_nodes": len(heap)}
        if deadline is not None and time.perf_counter() > deadline:
            heapq.heappush(heap, (neg_ub, next(tick), lo, hi))
            return inc, Status.TIME_LIMIT, -heap[0][0], {"nodes": nodes, "open_nodes": len(heap)}
        free = [(w, k, i) for w, k, i in coords if hi[k] >> i & 1 and not lo[k] >> i & 1]
        if not free:  # a point: its value is known exactly, nothing left to split
            continue
        _, k, i = free[0]
        hi0 = list(hi)
        hi0[k] &= ~(1 << i)
        push(list(lo), hi0)
        lo1 = list(lo)
        lo1[k] |= 1 << i
        push(lo1, list(hi))
    return inc, Status.OPTIMAL, inc_value, {"nodes": nodes, "open_nodes": 0}


# ------------------------------------------------------------------ Tuy's polyblock
def dmo_polyblock(instance: Moe2Instance, oracle: CountingOracle, deadline: float | None):
    """Polyblock outer approximation (``dmo(master="polyblock")``), for proven-monotone ``q`` and pool accounting.

    The feasible set ``G = {x : g(x) <= E}`` is normal (down-closed) and ``f`` is
    increasing, so ``max f`` over ``G`` is attained on its upper boundary.  A
    polyblock ``P = union_v [0, v]`` contains ``G``; start with the one vertex
    ``v = U`` (every usable expert).  Repeatedly take the vertex of largest
    ``f(v)`` (an upper bound on ``f`` over ``P``).  If ``f(v)`` does not exceed
    the incumbent, the incumbent is optimal.  If ``v`` is feasible it is
    optimal (``f(v) = max f`` on ``P``).  Otherwise *project*: add the
    coordinates of ``v`` in decreasing energy until the point ``w`` becomes
    infeasible; the point just before (feasible) updates the incumbent, and
    since every ``x >= w`` is infeasible, the cone ``[w, v]`` is cut from
    ``P``: ``v`` is replaced by the vertices ``v - e_j`` for ``j`` in ``w`` [1, 2].

    Notes
    -----
    Each new vertex changes one category, so its bound costs one oracle call
    (memoised).  Vertices are kept as a set (no duplicates); dominated
    vertices are not removed, which only costs work.  The number of vertices
    can grow exponentially; compare by oracle calls.

    References
    ----------
    .. [1] H. Tuy, "Monotonic optimization: problems and solution approaches",
       SIAM Journal on Optimization 11(2), 2000.
    .. [2] H. Tuy, M. Minoux, N. T. Hoai-Phuong, "Discrete monotonic
       optimization with application to a discrete location problem", SIAM
       Journal on Optimization 17(1), 2006.
    """
    sp = _Space(instance, oracle)
    C, tol, lam = sp.C, sp.tol, sp.lam
    coords = sorted(((lam[k] * float(sp.e[i]), k, i) for k in range(C) for i in ids_of(sp.start[k])), reverse=True)

    def f(v: tuple[int, ...]) -> float:
        return sum(sp.value(k, v[k]) for k in range(C))

    v0 = tuple(sp.start)
    tick = itertools.count()
    heap = [(-f(v0), next(tick), v0)]
    seen = {v0}
    inc, inc_value = (0,) * C, f((0,) * C)
    nodes = 0
    while heap:
        neg, _, v = heapq.heappop(heap)
        if _closes(-neg, inc_value):
            return list(inc), Status.OPTIMAL, max(inc_value, -neg), {"nodes": nodes, "vertices": len(seen)}
        nodes += 1
        if deadline is not None and time.perf_counter() > deadline:
            return list(inc), Status.TIME_LIMIT, -neg, {"nodes": nodes, "vertices": len(seen)}
        g, w = 0.0, [0] * C
        last = None
        for we, k, i in coords:  # project v onto the boundary of G, most energy first
            if v[k] >> i & 1:
                if g + we > tol:
                    last = (k, i)
                    w[k] |= 1 << i
                    break
                g += we
                w[k] |= 1 << i
        if last is None:  # v itself is feasible, and f(v) bounds P: optimal
            return list(v), Status.OPTIMAL, -neg, {"nodes": nodes, "vertices": len(seen)}
        z = list(w)
        z[last[0]] &= ~(1 << last[1])
        fz = f(tuple(z))
        if fz > inc_value:
            inc, inc_value = tuple(z), fz
        for k in range(C):  # cut [w, v]: new vertices v - e_j for every j of w
            for i in ids_of(w[k]):
                u = list(v)
                u[k] &= ~(1 << i)
                u = tuple(u)
                if u not in seen:
                    seen.add(u)
                    fu = f(u)
                    if not _closes(fu, inc_value):
                        heapq.heappush(heap, (-fu, next(tick), u))
    return list(inc), Status.OPTIMAL, inc_value, {"nodes": nodes, "vertices": len(seen)}

