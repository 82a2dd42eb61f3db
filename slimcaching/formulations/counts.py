"""Lagrangian decomposition with integer per-node layer counts: a bound at least the layer decomposition's.

The layer decomposition (:mod:`.decomposition`) convexifies each layer but
keeps each node's capacity row linear, so its bound equals the tightened LP
bound whenever the LP is already integral within a layer; on mixed precision
(many distinct expert sizes) that leaves the whole gap.  This module adds the
second structure of the problem: the storage a node uses is ``sum_l s_l k_l``
with *integer* counts ``k_l = |P_l|`` of cached experts per layer.

For node ``n`` let ``m_{n,l}`` be the number of useful elements ``(n, l, .)``
(:func:`.tightenings.useful_counts`) and

.. math::

    K_n = \\{k \\in \\mathbb{Z}^L : 0 \\le k_l \\le m_{n,l},\\ \\sum_l s_l k_l \\le Q'_n\\}.

**Bound.**  For every ``mu >= 0`` of shape ``(N, L)`` (seconds per expert),

.. math::

    T(\\mathrm{opt}) \\ge \\sum_l \\min_P \\Big(c_P + \\sum_n \\mu_{n,l} |P_n|\\Big)
                        - \\sum_n \\max_{k \\in K_n} \\sum_l \\mu_{n,l} k_l.

*Proof.*  Caching an element outside the support changes no latency, so some
optimal placement ``x`` caches only useful elements; its layer patterns
``P_l`` each respect every node's capacity ``Q'_n`` (a single layer uses at
most what the node holds) and its counts ``k_{n,l} = |P_{l,n}|`` lie in
``K_n`` (the storage of node ``n`` is ``sum_l s_l k_{n,l} <= Q'_n``, the
tightened capacity being the largest storage a useful placement can use).
Then ``T(x) = sum_l c_{P_l} = sum_l (c_{P_l} + sum_n mu_{n,l} k_{n,l}) -
sum_n mu_n . k_n``; the first sum is at least the sum of the layer minima and
the subtracted term at most the sum of the knapsack maxima.  Each layer
minimum is replaced by its pricing problem's *proven* lower bound and each
knapsack maximum by its MILP's proven *upper* bound (never below the value of
the count vector it returned), so the bound holds at every stopping point.

Choosing ``mu_{n,l} = nu_n s_l`` gives ``max_k nu_n sum_l s_l k_l <= nu_n Q'_n``,
so the bound at those prices is at least the layer decomposition's bound at
``nu`` (:func:`count_generation` starts there); the maximum over ``mu`` is the
LP bound of the master below, which intersects the layer hulls with the hulls
of the ``K_n``.

**Master** (column generation over both column kinds, Wentges smoothing by
:func:`.decomposition.stabilised_generation`, the loop of the layer decomposition):

.. math::

    \\min \\sum_{l,P} c_P\\lambda_{l,P}\\ \\text{s.t.}\\
    \\sum_P \\lambda_{l,P} = 1\\ (\\pi_l),\\quad \\sum_{k} \\gamma_{n,k} = 1\\ (\\rho_n),\\quad
    \\sum_P |P_n| \\lambda_{l,P} - \\sum_k k_l \\gamma_{n,k} \\le 0\\ (-\\mu_{n,l}),\\quad \\lambda, \\gamma \\ge 0.

References
----------
.. [1] M. Guignard, S. Kim, "Lagrangean decomposition: a model yielding
   stronger Lagrangean bounds", Mathematical Programming 39, 1987.
.. [2] P. Wentges, "Weighted Dantzig-Wolfe decomposition for linear mixed-integer
   programming", International Transactions in Operational Research 4(2), 1997.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterable

import highspy
import numpy as np

from ..instances.model import Instance, Placement
from ..objective import empty_latency
from .decomposition import Column, Decomposition, LayerPricer, make_column, stabilised_generation
from .direct import new_highs, run
from .tightenings import DEFAULT_TIGHTENINGS, tightened_capacities, useful_counts

__all__ = ["CountDecomposition", "KnapsackPricer", "count_generation", "STALL_ROUNDS"]

STALL_ROUNDS = 20
"""Rounds without a rise after which ``certify`` and ``lns`` stop the count decomposition.  Where it
pays it rises early (``mixed-mixtral-8x7b-wifi-rtx-L8``: first rise at round 9, +1.1 % by round 18;
``mixed-phi-3.5-moe-wifi-rtx-L8``: round 17); on ``mixed-phi-3.5-moe-5g-device`` it made 86 rounds
(258 s of a 600 s ``certify``) without one."""


@dataclass
class CountDecomposition:
    """Outcome of :func:`count_generation`.

    Attributes
    ----------
    bound : float
        Best Lagrangian bound (seconds), a proven lower bound on ``T(opt)``.
    start_bound : float
        The bound at the start prices (``nu_n s_l`` of the layer decomposition), for comparison.
    master_value : float or None
        Last restricted master LP value (not a bound on ``T(opt)``).
    prices : float64 (N, L)
        ``mu`` of the best bound (seconds per expert).
    columns : list of Column
        Layer patterns (usable by :func:`.decomposition.price_and_branch`).
    counts : list of (int, int64 (L,))
        Generated count vectors ``(n, k)``.
    capacity : int64 (N,)
    rounds, converged, history
    """

    bound: float
    start_bound: float
    master_value: float | None
    prices: np.ndarray
    columns: list[Column]
    counts: list[tuple[int, np.ndarray]]
    capacity: np.ndarray
    rounds: int = 0
    converged: bool = False
    history: list[dict] = field(default_factory=list)


class KnapsackPricer:
    """``max_{k in K_n} mu . k``: a bounded integer knapsack solved by HiGHS (``L`` integer variables).

    Parameters
    ----------
    sizes : int (L,)
        Expert sizes ``s_l``.
    upper : int (L,)
        ``m_{n,l}``.
    capacity : int
        ``Q'_n``.
    scale : float
        Objective scale (prices are multiplied by it for HiGHS).
    node_limit : int, optional
        HiGHS ``mip_max_nodes`` (a work limit; the returned upper bound stays proven).
    """

    def __init__(self, sizes: np.ndarray, upper: np.ndarray, capacity: int, scale: float,
                 node_limit: int | None = None):
        self.L, self.scale = len(sizes), scale
        self.h = new_highs()
        self.h.setOptionValue("threads", 1)
        if node_limit is not None:
            self.h.setOptionValue("mip_max_nodes", int(node_limit))
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        L = self.L
        self.h.addVars(L, np.zeros(L), np.asarray(upper, float))
        self.h.changeColsIntegrality(L, np.arange(L, dtype=np.int32),
                                     np.array([highspy.HighsVarType.kInteger] * L))
        nz = np.flatnonzero(np.asarray(upper) > 0).astype(np.int32)
        self.h.addRow(-highspy.kHighsInf, float(capacity), len(nz), nz, np.asarray(sizes, float)[nz])

    def price(self, mu: np.ndarray, time_limit: float | None = None) -> tuple[float, np.ndarray]:
        """``(proven upper bound on the maximum, a maximiser k int64 (L,))``, seconds."""
        mu = np.maximum(np.asarray(mu, float), 0.0)
        self.h.changeColsCost(self.L, np.arange(self.L, dtype=np.int32), mu * self.scale)
        if time_limit is not None:
            self.h.setOptionValue("time_limit", float(max(time_limit, 0.01)))
        run(self.h)
        info = self.h.getInfo()
        k = np.zeros(self.L, dtype=np.int64)
        if info.primal_solution_status >= 1:
            k = np.rint(np.array(self.h.getSolution().col_value)).astype(np.int64)
        value = float(mu @ k)
        dual = info.mip_dual_bound
        # no finite dual bound (e.g. stopped before the root): the trivial upper bound sum_l mu_l m_l
        trivial = float(mu @ np.asarray(self.h.getLp().col_upper_, float))
        upper = dual / self.scale if math.isfinite(dual) and abs(dual) < highspy.kHighsInf else trivial
        return max(min(upper, trivial), value), k


class _CountMaster:
    """Restricted master LP of the count decomposition (rows: L layers, N nodes, N*L links)."""

    def __init__(self, instance: Instance, capacity: np.ndarray):
        self.instance, self.capacity = instance, capacity
        self.scale = 1e4 / max(empty_latency(instance), 1e-300)
        L, N = instance.L, instance.N
        self.h = new_highs()
        self.h.setOptionValue("threads", 1)
        lo = np.concatenate([np.ones(L + N), np.full(N * L, -highspy.kHighsInf)])
        hi = np.concatenate([np.ones(L + N), np.zeros(N * L)])
        self.h.addRows(L + N + N * L, lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.columns: list[Column] = []
        self.counts: list[tuple[int, np.ndarray]] = []
        self._keys: set[bytes] = set()

    def _link(self, n: np.ndarray, l: np.ndarray | int) -> np.ndarray:
        L, N = self.instance.L, self.instance.N
        return (L + N + np.asarray(n) * L + np.asarray(l)).astype(np.int32)

    def add_pattern(self, col: Column) -> bool:
        key = b"p" + col.layer.to_bytes(4, "little") + np.packbits(col.pattern).tobytes()
        if key in self._keys or np.any(col.usage > self.capacity):
            return False
        self._keys.add(key)
        size = np.asarray(col.pattern).sum(axis=1)
        nodes = np.flatnonzero(size)
        rows = np.concatenate([[col.layer], self._link(nodes, col.layer)]).astype(np.int32)
        vals = np.concatenate([[1.0], size[nodes].astype(float)])
        self.h.addCol(col.cost * self.scale, 0.0, highspy.kHighsInf, len(rows), rows, vals)
        self.columns.append(col)
        return True

    def add_count(self, n: int, k: np.ndarray) -> bool:
        key = b"k" + int(n).to_bytes(4, "little") + np.asarray(k, np.int64).tobytes()
        if key in self._keys:
            return False
        self._keys.add(key)
        layers = np.flatnonzero(k)
        rows = np.concatenate([[self.instance.L + n], self._link(np.full(len(layers), n), layers)]).astype(np.int32)
        vals = np.concatenate([[1.0], -np.asarray(k, float)[layers]])
        self.h.addCol(0.0, 0.0, highspy.kHighsInf, len(rows), rows, vals)
        self.counts.append((int(n), np.asarray(k, np.int64).copy()))
        return True

    def solve(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        """``(value seconds, pi (L,), rho (N,), mu (N, L) >= 0)`` of the restricted master LP."""
        run(self.h)
        y = np.array(self.h.getSolution().row_dual) / self.scale
        L, N = self.instance.L, self.instance.N
        mu = np.maximum(0.0, -y[L + N:]).reshape(N, L)
        return self.h.getInfo().objective_function_value / self.scale, y[:L], y[L:L + N], mu


def count_generation(instance: Instance, *, start: Decomposition | None = None, starts: Iterable[Placement] = (),
                     alpha: float = 0.5, time_limit: float | None = None, price_time: float | None = 5.0,
                     pricing: str = "milp", tol: float = 1e-7, max_rounds: int = 10_000,
                     tightenings: Iterable[str] = DEFAULT_TIGHTENINGS,
                     node_limit: int | None = None, stall_rounds: int | None = None) -> CountDecomposition:
    """Column generation for the count decomposition; a valid bound after every round.

    Parameters
    ----------
    start : Decomposition, optional
        A layer decomposition (:func:`.decomposition.column_generation`): its
        columns seed the master and its prices ``nu`` give the start
        ``mu_{n,l} = nu_n s_l`` (where this bound is already at least its bound).
    starts : placements
        Their layer patterns and count vectors are initial columns.
    alpha, time_limit, price_time, pricing, tol, max_rounds, tightenings, node_limit
        As in :func:`.decomposition.column_generation` (``node_limit`` for the knapsacks too).
    stall_rounds : int, optional
        Stop after this many rounds without a rise of the bound
        (:func:`.decomposition.stabilised_generation`).

    Returns
    -------
    CountDecomposition
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    L, N, E = instance.L, instance.N, instance.max_experts
    cap = tightened_capacities(instance, tuple(tightenings))
    upper = useful_counts(instance)
    master = _CountMaster(instance, cap)
    sizes = np.asarray(instance.expert_size, np.int64)
    for l in range(L):
        master.add_pattern(make_column(instance, l, np.zeros((N, E), dtype=bool)))
    for n in range(N):
        master.add_count(n, np.zeros(L, np.int64))
    for st in starts:
        for l in range(L):
            master.add_pattern(make_column(instance, l, st.x[:, l, :]))
        for n in range(N):
            master.add_count(n, np.minimum(st.x[n].sum(axis=1), upper[n]))
    if start is not None:
        for col in start.columns:
            master.add_pattern(col)
    knaps = [KnapsackPricer(sizes, upper[n], int(cap[n]), master.scale, node_limit) for n in range(N)]
    pricers: dict[int, LayerPricer] = {}
    eps = 1e-12 * empty_latency(instance)

    def left() -> float:
        return deadline - time.perf_counter()

    def pricing_round(mu: np.ndarray, duals: tuple | None):
        """Price every layer and node at ``mu``: (bound or None, columns added, negative reduced costs)."""
        total, added, negative = 0.0, 0, 0
        for l in range(L):
            if left() <= 0:
                return None, added, negative
            if l not in pricers:
                pricers[l] = LayerPricer(instance, l, cap, pricing, tightenings, node_limit)
            tl = left() if price_time is None else min(price_time, left())
            lower, pattern = pricers[l].price_items(mu[:, l], tl)
            total += lower
            col = make_column(instance, l, pattern)
            if duals is not None:
                pi, _, mu_m = duals
                if col.cost + float(mu_m[:, l] @ pattern.sum(axis=1)) - pi[l] < -eps:
                    negative += 1
            added += master.add_pattern(col)
        for n in range(N):
            if left() <= 0:
                return None, added, negative
            tl = left() if price_time is None else min(price_time, left())
            ub, k = knaps[n].price(mu[n], tl)
            total -= ub
            if duals is not None:
                _, rho, mu_m = duals
                if -float(mu_m[n] @ k) - rho[n] < -eps:
                    negative += 1
            added += master.add_count(n, k)
        return total, added, negative

    def solve_master():
        value, pi, rho, mu_m = master.solve()
        return value, (pi, rho, mu_m), mu_m

    mu0 = None if start is None else np.asarray(start.prices, float)[:, None] * sizes[None, :].astype(float)
    run_ = stabilised_generation(solve_master, pricing_round, center=np.zeros((N, L)), start=mu0, alpha=alpha,
                                 tol=tol, max_rounds=max_rounds, left=left, t0=t0,
                                 stall_rounds=stall_rounds)
    return CountDecomposition(bound=run_.bound, start_bound=run_.start_bound, master_value=run_.master_value,
                              prices=run_.prices, columns=master.columns, counts=master.counts, capacity=cap,
                              rounds=run_.rounds, converged=run_.converged, history=run_.history)
