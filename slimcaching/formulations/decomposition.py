"""Dantzig-Wolfe decomposition of the level model by layer, and its Lagrangian bound.

Layers interact only through the node capacities.  A *column* of layer ``l``
is a layer pattern ``P`` (which node caches which expert of layer ``l``), with
cost ``c_P`` = the layer's share of ``T`` under ``P`` (the evaluator's, see
:func:`slimcaching.formulations.arrays.layer_latencies`) and storage
``u_n(P) = s_l |P_n|``.  The restricted master LP is

.. math::

    \\min \\sum_{l,P} c_P \\lambda_{l,P}\\quad\\text{s.t.}\\quad
    \\sum_P \\lambda_{l,P} = 1\\ (\\text{convexity}[l],\\ \\pi_l),\\qquad
    \\sum_{l,P} u_n(P) \\lambda_{l,P} \\le Q'_n\\ (\\text{capacity}[n],\\ -\\nu_n),\\qquad \\lambda \\ge 0,

with ``Q'`` the tightened capacities (:mod:`.tightenings`).  *Pricing* for
layer ``l`` at prices ``nu >= 0`` is the one-layer level model with
``nu_n s_l`` added to the cost of every ``x[n,l,e]`` (and each node's
capacity, which a single layer's pattern must respect too), solved as a MILP
(or as an LP for very large layers, ``pricing="lp"``).

**Lagrangian bound.**  For every ``nu >= 0`` and every feasible placement
``x`` with layer patterns ``P_l``,
``T(x) >= T(x) + nu . (u(x) - Q') = sum_l (c_{P_l} + nu . u(P_l)) - nu . Q'
>= sum_l min_P (c_P + nu . u(P)) - nu . Q'``.  Each minimum is replaced by a
*proven* lower bound of the pricing problem: the MILP's dual bound, or the
rigorous LP bound from the duals (:func:`.direct.safe_lp_bound`), and never
below the layer's capacity-free latency.  So the bound is valid after every
round, whatever the prices, and the method can stop at any time.

**Stabilisation** (Wentges smoothing): prices are
``alpha nu_center + (1 - alpha) nu_master`` with ``nu_center`` the prices of
the best bound so far; when no column prices out at the master's duals
(a mispricing) the round is repeated at the master's duals, so the method
converges like plain column generation, without the oscillation seen on
8-node instances.

**Price-and-branch** (:func:`price_and_branch`): the master over the
generated columns with integer ``lambda`` is a MILP whose solutions are
feasible placements.  Column generation ends with few columns per layer (the
ones the master LP needs at its optimal prices), so :func:`perturbed_columns`
adds, before it, each layer's cheapest patterns at randomly perturbed prices.

References
----------
.. [1] G. B. Dantzig, P. Wolfe, "Decomposition principle for linear programs",
   Operations Research 8(1), 1960.
.. [2] P. Wentges, "Weighted Dantzig-Wolfe decomposition for linear mixed-integer
   programming", International Transactions in Operational Research 4(2), 1997.
.. [3] A. Pessoa, R. Sadykov, E. Uchoa, F. Vanderbeck, "Automation and combination
   of linear-programming based stabilization techniques in column generation",
   INFORMS Journal on Computing 30(2), 2018.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import highspy
import numpy as np

from ..instances.model import Instance, Placement
from ..objective import empty_latency
from .arrays import build_level_arrays, layer_latencies, level_model_rows
from .assignment import support
from .direct import new_highs, run, solve_arrays, to_highs
from .tightenings import DEFAULT_TIGHTENINGS, tightened_capacities

__all__ = ["Column", "Decomposition", "Generation", "LayerPricer", "column_generation", "stabilised_generation", "price_and_branch", "lp_prices",
           "perturbed_columns", "PRICING", "LP_SOLVERS", "PDLP_ITERATIONS", "RAY_FACTOR",
           "WARM_PRICING_ROWS", "PERTURB_ROUNDS", "PERTURB_SPREAD"]

PRICING = ("milp", "lp")
"""Pricing problems: the one-layer MILP (exact columns, stronger bound) or its LP (large layers)."""

WARM_PRICING_ROWS = 2_000_000
"""Level-model rows (all layers) up to which the pricing problems keep their HiGHS objects warm
between rounds; above, each pricing call builds and drops its own, so memory stays at the arrays."""

PDLP_ITERATIONS = 20_000
"""Iterations HiGHS's first-order LP method (PDLP) gets on a pricing LP with ``lp_solver="pdlp"``
before dual simplex solves that LP instead (a work limit: the choice does not depend on machine speed).
On layer 0 of DeepSeek-V3, at six price levels, PDLP took 200-4 400 iterations (0.3-5.1 s)."""

RAY_FACTOR = 0.9
"""Step of :func:`column_generation`'s line search from start prices that price every layer out."""

LP_SOLVERS = ("simplex", "pdlp")
"""HiGHS methods for LP pricing: dual simplex (vertex solutions), or PDLP with dual simplex behind it."""

PERTURB_ROUNDS = 40
"""Pricing rounds of :func:`perturbed_columns` (each prices every layer once)."""

PERTURB_SPREAD = 0.1
"""Standard deviation of the log of :func:`perturbed_columns`' price factors."""


@dataclass
class Column:
    """A layer pattern: ``pattern`` bool (N, Emax), ``cost`` seconds, ``usage`` int64 (N,)."""

    layer: int
    pattern: np.ndarray
    cost: float
    usage: np.ndarray


def make_column(instance: Instance, layer: int, pattern: np.ndarray) -> Column:
    """The column of ``pattern`` for ``layer``, its cost from the evaluator."""
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    x[:, layer, :] = pattern
    return Column(layer, np.array(pattern, dtype=bool), float(layer_latencies(instance, x)[layer]),
                  (np.asarray(pattern).sum(axis=1) * instance.expert_size[layer]).astype(np.int64))


def column_key(col: Column) -> bytes:
    """A key that two columns share exactly when their layers and patterns are equal."""
    return bytes([col.layer % 256, col.layer // 256]) + np.packbits(col.pattern).tobytes()


@dataclass
class Decomposition:
    """Outcome of :func:`column_generation`.

    Attributes
    ----------
    bound : float
        Best Lagrangian bound (seconds), a proven lower bound on ``T(opt)``.
    master_value : float or None
        Last restricted master LP value (an upper bound on the decomposition's
        LP value, not a bound on ``T(opt)``).
    prices : float64 (N,)
        Prices of the best bound.
    columns : list of Column
    capacity : int64 (N,)
        The tightened capacities ``Q'``.
    rounds, converged, history
        Pricing rounds, whether master and bound met, one dict per round.
    lp_solver : str
        The pricing LPs' method (:data:`LP_SOLVERS`; ``"simplex"`` with MILP pricing).
    pdlp_fallbacks : int
        Pricing LPs that dual simplex solved after PDLP stopped without an optimum.
    """

    bound: float
    master_value: float | None
    prices: np.ndarray
    columns: list[Column]
    capacity: np.ndarray
    rounds: int = 0
    converged: bool = False
    history: list[dict] = field(default_factory=list)
    lp_solver: str = "simplex"
    pdlp_fallbacks: int = 0


class LayerPricer:
    """The pricing problem of one layer in a warm HiGHS object; re-priced by changing ``x`` costs.

    Parameters
    ----------
    instance : Instance
    layer : int
    capacity : int (N,)
        Per-node capacity a single layer's pattern must respect.
    pricing : {"milp", "lp"}
    tightenings : iterable of str
    node_limit : int, optional
        HiGHS ``mip_max_nodes`` of each pricing MILP (a work limit: its dual
        bound stays a proven bound, and the result does not depend on machine speed).
    warm : bool
        Keep the HiGHS objects between calls (warm starts).  A solved HiGHS
        object of a DeepSeek-V3 layer holds about 100 MB, so for 58 layers
        :func:`column_generation` passes ``warm=False`` on large models: each
        call then builds and drops its own (1.2 s instead of 0.15 s per LP
        there), and only the arrays (about 13 MB a layer) stay.
    lp_solver : {"simplex", "pdlp"}
        How HiGHS solves an LP pricing problem (``pricing="lp"``; ignored for
        ``"milp"``).  ``"pdlp"``: the first-order method, with dual simplex
        solving the LP again when PDLP stops without an optimum within
        :data:`PDLP_ITERATIONS` (counted in ``pdlp_fallbacks``).  The bound
        stays proven either way: it is computed from the returned duals by
        :func:`.direct.safe_lp_bound`, however inaccurate they are.  PDLP's
        solutions need not be vertices, so its columns (the rounded solution)
        are weaker where the LP has many optima.

        Measured on DeepSeek-V3's layer LPs (104 411 rows each; CPU seconds):
        at the separable Lagrangian's prices, which price every expert out,
        dual simplex 0.6-0.8 s (all 58 layers), PDLP 0.3-0.5 s; at half those
        prices, dual simplex 34-46 s (12 layers), interior point with
        crossover 11 s (layers 0 and 6), PDLP 5.1 s (layer 0).  On OLMoE at
        its converged prices PDLP took 1.5-3.7 s a layer against 5.8-6.5 s
        (layers 0-3), but its solutions round to empty columns there, where
        simplex's give whole-layer columns; so :func:`column_generation`
        uses PDLP only on the cold (largest) models.
    """

    def __init__(self, instance: Instance, layer: int, capacity: np.ndarray, pricing: str = "milp",
                 tightenings: Iterable[str] = DEFAULT_TIGHTENINGS, node_limit: int | None = None,
                 warm: bool = True, lp_solver: str = "simplex"):
        if lp_solver not in LP_SOLVERS:
            raise ValueError(f"lp_solver must be one of {LP_SOLVERS}, got {lp_solver!r}")
        self.instance, self.layer, self.pricing, self.warm, self.node_limit = instance, layer, pricing, warm, node_limit
        self.lp_solver = lp_solver if pricing == "lp" else "simplex"
        self.pdlp_fallbacks = 0
        mask = np.zeros(instance.L, dtype=bool)
        mask[layer] = True
        self.model = build_level_arrays(instance, layers=mask, capacity=capacity, tightenings=tightenings)
        self.h = self.h_lp = None
        if warm:
            self._build()
        self.lp_hits = 0
        self.base = self.model.obj[:self.model.n_x].copy()
        el = support(instance).elements[self.model.x_el]
        self.node, self.expert = el[:, 0], el[:, 2]
        share = layer_latencies(instance, instance.empty_placement().x)
        # the sub-model's offset holds T(empty) of every layer; a column costs only its own layer
        self.other = empty_latency(instance) - float(share[layer])
        everything = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
        allel = support(instance).elements
        everything[allel[:, 0], allel[:, 1], allel[:, 2]] = True
        self.floor = float(layer_latencies(instance, everything)[layer])  # capacity-free latency of the layer

    def _build(self) -> None:
        """The HiGHS objects: the pricing problem, and its LP first when it is a MILP (when the LP's
        solution is integral it is the MILP's optimum, at a fraction of the cost)."""
        if not self.model.n_x:
            return
        self.h = to_highs(self.model, integer=self.pricing == "milp")
        if self.lp_solver == "pdlp":
            self.h.setOptionValue("solver", "pdlp")
            self.h.setOptionValue("pdlp_iteration_limit", PDLP_ITERATIONS)
        if self.node_limit is not None:
            self.h.setOptionValue("mip_max_nodes", int(self.node_limit))
        self.h_lp = to_highs(self.model, integer=False) if self.pricing == "milp" else None

    def price(self, nu: np.ndarray, time_limit: float | None = None) -> tuple[float, np.ndarray]:
        """``(proven lower bound on min_P c_P + nu . u(P), a pattern bool (N, Emax))`` in seconds."""
        return self.price_items(float(self.instance.expert_size[self.layer]) * np.asarray(nu, float), time_limit)

    def price_items(self, item: np.ndarray, time_limit: float | None = None) -> tuple[float, np.ndarray]:
        """``(proven lower bound on min_P c_P + sum_n item_n |P_n|, a pattern)``: ``item`` (N,) seconds per expert."""
        inst = self.instance
        pattern = np.zeros((inst.N, inst.max_experts), dtype=bool)
        m = self.model
        if not m.n_x:
            return self.floor, pattern
        if self.h is None:
            self._build()
        try:
            return self._price(item, time_limit, pattern)
        finally:
            if not self.warm:
                self.h = self.h_lp = None

    def _price(self, item: np.ndarray, time_limit: float | None, pattern: np.ndarray) -> tuple[float, np.ndarray]:
        m = self.model
        cost = self.base + m.scale * np.asarray(item, float)[self.node]
        cols = np.arange(m.n_x, dtype=np.int32)
        full = m.obj.copy()
        full[:m.n_x] = cost
        res = None
        if self.h_lp is not None:
            self.h_lp.changeColsCost(m.n_x, cols, cost)
            first = solve_arrays(m, integer=False, time_limit=time_limit, h=self.h_lp, obj=full)
            if first.col_value is not None and np.all(np.minimum(first.col_value[:m.n_x],
                                                                 1 - first.col_value[:m.n_x]) <= 1e-9):
                res = first
                self.lp_hits += 1
        if res is None:
            self.h.changeColsCost(m.n_x, cols, cost)
            started = time.perf_counter()
            res = solve_arrays(m, integer=self.pricing == "milp", time_limit=time_limit, h=self.h, obj=full)
            if self.lp_solver == "pdlp" and self.h.getModelStatus() not in (highspy.HighsModelStatus.kOptimal,
                                                                              highspy.HighsModelStatus.kTimeLimit):
                # PDLP ran out of iterations (or failed): dual simplex solves the same LP from scratch
                self.pdlp_fallbacks += 1
                self.h.setOptionValue("solver", "simplex")
                try:
                    rest = None if time_limit is None else max(0.01, time_limit - (time.perf_counter() - started))
                    res = solve_arrays(m, integer=False, time_limit=rest, h=self.h, obj=full)
                finally:
                    self.h.setOptionValue("solver", "pdlp")
        if res.safe_bound is not None:
            lower = res.safe_bound
        else:
            lower = res.bound if res.bound is not None else -math.inf
        lower = max(lower - self.other, self.floor)
        if res.col_value is not None:
            x = res.col_value[:m.n_x]
            pattern = self.pattern_of(x)
            if self.pricing == "lp":
                pattern = self._repair(pattern, x)
        return lower, pattern

    def pattern_of(self, x: np.ndarray) -> np.ndarray:
        """The pattern (bool (N, Emax)) of the ``x`` columns' values ``x`` (those above 0.5)."""
        pattern = np.zeros((self.instance.N, self.instance.max_experts), dtype=bool)
        take = np.asarray(x) > 0.5
        pattern[self.node[take], self.expert[take]] = True
        return pattern

    def _repair(self, pattern: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Drop the elements with the smallest LP values until every node's pattern fits."""
        inst = self.instance
        size = int(inst.expert_size[self.layer])
        for n in range(inst.N):
            k = int(self.model.capacity[n]) // size
            mine = np.flatnonzero((self.node == n) & pattern[self.node, self.expert])
            if len(mine) > k:
                drop = mine[np.argsort(x[mine], kind="stable")[:len(mine) - k]]
                pattern[self.node[drop], self.expert[drop]] = False
        return pattern


class _Master:
    """The restricted master LP in a warm highspy object (scaled like the arrays)."""

    def __init__(self, instance: Instance, capacity: np.ndarray):
        self.instance, self.capacity = instance, capacity
        self.scale = 1e4 / max(empty_latency(instance), 1e-300)
        self.h = new_highs()
        self.h.setOptionValue("threads", 1)
        L, N = instance.L, instance.N
        lo = np.concatenate([np.ones(L), np.full(N, -highspy.kHighsInf)])
        hi = np.concatenate([np.ones(L), capacity.astype(float)])
        self.h.addRows(L + N, lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
        self.columns: list[Column] = []
        self._keys: set[bytes] = set()

    def add(self, col: Column) -> bool:
        key = column_key(col)
        if key in self._keys or np.any(col.usage > self.capacity):
            return False
        self._keys.add(key)
        L = self.instance.L
        nodes = np.flatnonzero(col.usage)
        rows = np.concatenate([[col.layer], L + nodes]).astype(np.int32)
        vals = np.concatenate([[1.0], col.usage[nodes].astype(float)])
        self.h.addCol(col.cost * self.scale, 0.0, highspy.kHighsInf, len(rows), rows, vals)
        self.columns.append(col)
        return True

    def solve(self) -> tuple[float, np.ndarray, np.ndarray]:
        """``(value seconds, pi (L,), nu (N,) >= 0)`` of the restricted master LP."""
        run(self.h)
        y = np.array(self.h.getSolution().row_dual) / self.scale
        L = self.instance.L
        return self.h.getInfo().objective_function_value / self.scale, y[:L], np.maximum(0.0, -y[L:])


def lp_prices(instance: Instance, *, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS,
              time_limit: float | None = None, point: bool = False):
    """``(safe LP bound or None, capacity prices nu (N,) >= 0)`` of the tightened level LP.

    The prices (the capacity rows' duals per storage unit, in seconds) start
    column generation where the Lagrangian bound already equals the LP bound.
    With ``point=True`` a third item: the LP's ``x`` as float (N, L, Emax)
    (``None`` when the LP did not finish), e.g. for a RINS neighbourhood.
    """
    m = build_level_arrays(instance, tightenings=tightenings)
    nu = np.zeros(instance.N)
    x = np.zeros((instance.N, instance.L, instance.max_experts))
    if m.n_x == 0:
        return (empty_latency(instance), nu, x) if point else (empty_latency(instance), nu)
    r = solve_arrays(m, integer=False, time_limit=time_limit)
    if r.row_dual is None:
        return (None, nu, None) if point else (None, nu)
    nu[m.capacity_node] = np.maximum(0.0, -r.row_dual[m.capacity_row] / m.scale)
    if not point:
        return r.safe_bound, nu
    el = support(instance).elements[m.x_el]
    x[el[:, 0], el[:, 1], el[:, 2]] = r.col_value[:m.n_x]
    return r.safe_bound, nu, x


@dataclass
class Generation:
    """Outcome of :func:`stabilised_generation`.

    Attributes
    ----------
    bound : float
        Best bound any pricing round proved (``-inf`` when none completed).
    prices : ndarray
        The stability centre: prices of ``bound`` (the initial centre if none).
    start_bound : float
        The best bound of the rounds at the start prices and along their ray
        (``next_start``; ``-inf`` without a start).
    master_value : float or None
        Last restricted master LP value.
    rounds, converged, history
        Pricing rounds, whether master and bound met, one dict per round.
    """

    bound: float
    prices: np.ndarray
    start_bound: float = -math.inf
    master_value: float | None = None
    rounds: int = 0
    converged: bool = False
    history: list[dict] = field(default_factory=list)


def stabilised_generation(solve_master: Callable[[], tuple[float, Any, np.ndarray]],
                          pricing_round: Callable[[np.ndarray, Any], tuple[float | None, int, int]], *,
                          center: np.ndarray, start: np.ndarray | None = None, alpha: float = 0.5,
                          tol: float = 1e-7, max_rounds: int = 10_000, left: Callable[[], float],
                          t0: float | None = None,
                          stall_rounds: int | None = None,
                          next_start: Callable[[np.ndarray], np.ndarray | None] | None = None) -> Generation:
    """Column generation with Wentges smoothing, for any master and pricing round.

    Parameters
    ----------
    solve_master : callable
        ``() -> (value, duals, prices)``: solves the restricted master LP;
        ``prices`` (the shape of ``center``) are its duals of the linking rows,
        ``duals`` whatever ``pricing_round`` needs to test reduced costs.
    pricing_round : callable
        ``(prices, duals or None) -> (bound or None, columns added, columns
        with negative reduced cost at duals)``: prices every subproblem at
        ``prices``, adds the columns to the master and returns the proven
        Lagrangian bound there (``None`` when it ran out of time).  With
        ``duals=None`` reduced costs are not tested.
    center : ndarray
        Initial stability centre (usually zero prices).
    start : ndarray, optional
        Prices of a first round before the master is solved (e.g. LP duals).
    alpha : float in [0, 1)
        Smoothing weight; 0 is plain column generation.
    tol : float
        Stop when ``master - bound <= tol * master``.
    max_rounds : int
        Pricing rounds at most, the start round and mispricing retries
        included (a work limit: the count does not depend on machine speed).
    left : callable
        ``() -> seconds left``; nothing starts when it is ``<= 0``.
    stall_rounds : int, optional
        Stop after this many rounds in a row without a bound above the best
        (by more than ``tol`` relative); ``None``: never.  The bound so far stays proven.
    next_start : callable, optional
        ``(prices) -> prices or None``, called after each start round whose
        bound rose: further prices to try before the master is solved (a
        line search from ``start``; see :func:`column_generation`).  The
        search stops at the first round whose bound does not rise, and the
        best start round's prices become the centre.

    Returns
    -------
    Generation

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C during a round or the master, re-raised with the rounds
        completed so far as its ``generation`` attribute (a :class:`Generation`).

    Notes
    -----
    Every round's bound is proven by ``pricing_round`` at whatever prices it
    is given, so the smoothing (prices ``alpha center + (1 - alpha) master``,
    centre moved to the prices of each new best bound) changes only which
    bounds are found, never their validity.  A mispricing (no column with
    negative reduced cost at the smoothed prices) repeats the round at the
    master's duals, so the method ends like plain column generation [2]_.
    """
    t0 = time.perf_counter() if t0 is None else t0
    best, center, history = -math.inf, np.asarray(center, float).copy(), []
    rounds, converged, value, start_bound, lb = 0, False, None, -math.inf, None
    try:
        trial = None if start is None else np.asarray(start, float).copy()
        while trial is not None and rounds < max_rounds and left() > 0:
            lb, added, _ = pricing_round(trial, None)
            rounds += 1
            rose = lb is not None and lb > best
            if rose:
                best, center, start_bound = lb, trial, lb
            history.append({"round": rounds, "alpha": None, "master": None, "bound": lb, "best": best,
                            "added": added, "t": time.perf_counter() - t0})
            trial = next_start(trial.copy()) if rose and next_start is not None else None
        lb, rise = None, rounds  # the round of the last rise of the best bound
        while rounds < max_rounds and left() > 0:
            if stall_rounds is not None and rounds - rise >= stall_rounds:
                break
            value, duals, master_prices = solve_master()
            if math.isfinite(best) and value - best <= tol * abs(value):
                converged = True
                break
            found = False
            for a in ((alpha, 0.0) if alpha > 0 and math.isfinite(best) else (0.0,)):
                if rounds >= max_rounds:  # the retry at the master's duals counts as a round too
                    break
                prices = a * center + (1 - a) * master_prices
                lb, added, negative = pricing_round(prices, duals)
                rounds += 1
                if lb is not None and lb > best:
                    if not math.isfinite(best) or lb - best > tol * abs(best):
                        rise = rounds
                    best, center = lb, prices.copy()
                history.append({"round": rounds, "alpha": a, "master": value, "bound": lb, "best": best,
                                "added": added, "negative": negative, "t": time.perf_counter() - t0})
                if lb is None:
                    break
                if negative:
                    found = True
                    break
            if not found:
                # No column prices out at the master's duals.  Converged when the proven bound meets the
                # master value, whatever the pricing: the master (integral columns) is at least the
                # Dantzig-Wolfe value, which is at least every Lagrangian bound of the decomposition, LP-priced
                # ones included, so nothing is left for any pricing to add.  With LP pricing this is how the
                # decomposition ends at the tightened level LP (OLMoE paper files).
                converged = lb is not None and value - best <= max(tol, 1e-9) * abs(value)
                break
    except KeyboardInterrupt as exc:
        # Ctrl-C: every completed round's bound is proven; the caller may keep them (``exc.generation``)
        exc.generation = Generation(bound=best, prices=center, start_bound=start_bound, master_value=value,
                                    rounds=rounds, converged=False, history=history)
        raise
    return Generation(bound=best, prices=center, start_bound=start_bound, master_value=value, rounds=rounds,
                      converged=converged, history=history)


def column_generation(instance: Instance, *, starts: Iterable[Placement] = (), prices: np.ndarray | None = None,
                      alpha: float = 0.5, time_limit: float | None = None, price_time: float | None = 5.0,
                      pricing: str = "milp", tol: float = 1e-7, max_rounds: int = 10_000,
                      tightenings: Iterable[str] = DEFAULT_TIGHTENINGS, node_limit: int | None = None,
                      lp_solver: str | None = None, ray_factor: float | None = RAY_FACTOR) -> Decomposition:
    """Column generation by layer with Wentges smoothing; a valid bound after every round.

    Parameters
    ----------
    starts : placements
        Their layer patterns are initial columns (with the empty pattern, which
        keeps the master feasible).
    prices : float (N,), optional
        Initial prices (e.g. from :func:`lp_prices`): one pricing round there
        gives a first bound and columns before the master is solved.  When
        every layer prices out empty there, the prices are scaled by
        ``ray_factor`` and priced again, as long as every layer stays empty
        and the bound rises (see Notes).
    alpha : float in [0, 1)
        Smoothing weight; 0 is plain column generation.
    time_limit : float, optional
        Seconds; checked between pricing problems.
    price_time : float, optional
        Time limit of each pricing problem (its dual bound keeps the Lagrangian bound valid).
    pricing : {"milp", "lp"}
    tol : float
        Stop when ``master - bound <= tol * master``.
    max_rounds : int
        Pricing rounds at most.
    node_limit : int, optional
        Branch-and-bound nodes of each pricing MILP.  With ``time_limit`` and
        ``price_time`` ``None``, ``max_rounds`` and ``node_limit`` bound the
        work, and the result is the same on any machine.
    lp_solver : {"simplex", "pdlp"}, optional
        :class:`LayerPricer`'s method for LP pricing; default ``"pdlp"`` on
        the models whose pricers are cold (level models above
        :data:`WARM_PRICING_ROWS` rows: DeepSeek-V3), ``"simplex"`` otherwise.
    ray_factor : float in (0, 1), optional
        The factor of the line search from ``prices``; ``None`` turns it off.

    Returns
    -------
    Decomposition

    Raises
    ------
    KeyboardInterrupt
        Ctrl-C, re-raised with the rounds completed so far as its
        ``decomposition`` attribute (a :class:`Decomposition`, bound proven).

    Notes
    -----
    **The line search from the start prices.**  Start prices from a weaker
    relaxation can be far too high: DeepSeek-V3's separable-Lagrangian prices
    make every layer's pricing LP choose the empty pattern.  While every layer
    does, the Lagrangian bound is ``T(empty) - theta nu . Q'`` at prices
    ``theta nu``: it falls as ``theta`` rises, so the search lowers ``theta``
    by ``ray_factor`` per round until some layer caches an expert or the bound
    stops rising.  Each round is an ordinary pricing round (its bound is
    proven, whatever ``theta``), and the best becomes the smoothing centre.
    On DeepSeek-V3 (``paper-deepseek-v3-5g-mec-bf16``) the bound was 3.4834 at
    the separable prices and 3.5837, 3.6840, 3.7842 and 3.8845 at 0.9, 0.8,
    0.7 and 0.6 times them (every layer empty; 24-48 s of PDLP a round).
    """
    if lp_solver is not None and lp_solver not in LP_SOLVERS:
        raise ValueError(f"lp_solver must be one of {LP_SOLVERS}, got {lp_solver!r}")
    if ray_factor is not None and not 0 < ray_factor < 1:
        raise ValueError(f"ray_factor must be in (0, 1), got {ray_factor!r}")
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    L, N, E = instance.L, instance.N, instance.max_experts
    cap = tightened_capacities(instance, tuple(tightenings))
    master = _Master(instance, cap)
    for l in range(L):
        master.add(make_column(instance, l, np.zeros((N, E), dtype=bool)))
        for st in starts:
            master.add(make_column(instance, l, st.x[:, l, :]))
    pricers: list[LayerPricer] = []
    warm = level_model_rows(instance) <= WARM_PRICING_ROWS
    if lp_solver is None:
        lp_solver = "simplex" if warm else "pdlp"
    emptied = [False]  # did the last complete round price every layer out empty?

    def left() -> float:
        return deadline - time.perf_counter()

    def pricing_round(nu: np.ndarray, duals: tuple | None):
        """Price every layer at ``nu``; (bound, columns added, columns with negative reduced cost at ``duals``)."""
        total, added, negative, empty = 0.0, 0, 0, True
        for l in range(L):
            if left() <= 0:
                return None, added, negative
            if len(pricers) <= l:
                pricers.append(LayerPricer(instance, l, cap, pricing, tightenings, node_limit, warm=warm,
                                           lp_solver=lp_solver))
            tl = left() if price_time is None else min(price_time, left())
            lower, pattern = pricers[l].price(nu, tl)
            total += lower
            empty = empty and not pattern.any()
            col = make_column(instance, l, pattern)
            if duals is not None:
                pi, nu_master = duals
                if col.cost + float(nu_master @ col.usage) - pi[l] < -1e-12 * empty_latency(instance):
                    negative += 1
            added += master.add(col)
        emptied[0] = empty
        return total - float(nu @ cap), added, negative

    def solve_master():
        value, pi, nu_master = master.solve()
        return value, (pi, nu_master), nu_master

    def next_start(nu: np.ndarray) -> np.ndarray | None:
        return ray_factor * nu if ray_factor is not None and emptied[0] else None

    def outcome(run_: Generation) -> Decomposition:
        best = run_.bound
        if not math.isfinite(best):
            best = sum(p.floor for p in pricers) if len(pricers) == L else -math.inf
        return Decomposition(bound=best, master_value=run_.master_value, prices=run_.prices,
                             columns=list(master.columns), capacity=cap, rounds=run_.rounds,
                             converged=run_.converged, history=run_.history,
                             lp_solver=lp_solver if pricing == "lp" else "simplex",
                             pdlp_fallbacks=sum(p.pdlp_fallbacks for p in pricers))

    try:
        run_ = stabilised_generation(solve_master, pricing_round, center=np.zeros(N),
                                     start=None if prices is None else np.asarray(prices, float),
                                     alpha=alpha, tol=tol, max_rounds=max_rounds, left=left,
                                     t0=t0, next_start=next_start)
    except KeyboardInterrupt as exc:
        if getattr(exc, "generation", None) is not None:
            exc.decomposition = outcome(exc.generation)  # the proven bound so far, for the caller to keep
        raise
    return outcome(run_)


def perturbed_columns(instance: Instance, prices: np.ndarray, capacity: np.ndarray, *,
                      known: Iterable[Column] = (), rounds: int = PERTURB_ROUNDS, spread: float = PERTURB_SPREAD,
                      seed: int | None = 0, pricing: str = "milp", price_time: float | None = 5.0,
                      node_limit: int | None = None, time_limit: float | None = None,
                      tightenings: Iterable[str] = DEFAULT_TIGHTENINGS) -> list[Column]:
    """More columns for :func:`price_and_branch`: every layer priced at randomly perturbed prices.

    At the master's optimal prices ``nu`` each layer's pricing problem
    returns one of its cheapest patterns, and the master LP combines a few
    of them fractionally; price-and-branch must pick one column per layer,
    so it needs patterns of *other* storage mixes that cost almost as much.
    Round ``r`` prices every layer at ``nu_n exp(spread z_{r,n})``, with
    ``z`` standard normal from ``seed``: a node priced higher makes the
    layer's pattern shift storage to the others.  Every column is a pattern
    that fits each node, so price-and-branch stays feasible whatever columns
    it gets.  The pricing problems' bounds are not used here (each round's
    would be a valid Lagrangian bound at its own prices, like any other).

    Parameters
    ----------
    prices : float (N,)
        The centre, e.g. the prices of the decomposition's best bound.
    capacity : int (N,)
        The tightened capacities (:attr:`Decomposition.capacity`).
    known : columns
        Columns already held: equal patterns are not returned again.
    rounds : int
        Pricing rounds (every layer once per round); with ``node_limit``
        and no ``time_limit`` / ``price_time`` the result is the same on any machine.
    spread : float
        Standard deviation of the log of the price factors.
    seed : int, optional
    pricing, price_time, node_limit, tightenings
        As in :func:`column_generation`.
    time_limit : float, optional
        Seconds; checked between pricing problems.

    Returns
    -------
    list of Column
        The new columns, each fitting every node's capacity.
    """
    deadline = math.inf if time_limit is None else time.perf_counter() + float(time_limit)
    rng = np.random.default_rng(0 if seed is None else seed)
    nu = np.maximum(np.asarray(prices, float), 0.0)
    capacity = np.asarray(capacity)

    seen = {column_key(c) for c in known}
    warm = level_model_rows(instance) <= WARM_PRICING_ROWS
    pricers: dict[int, LayerPricer] = {}
    new: list[Column] = []
    for _ in range(int(rounds)):
        factor = np.exp(float(spread) * rng.standard_normal(instance.N))
        for l in range(instance.L):
            left = deadline - time.perf_counter()
            if left <= 0:
                return new
            if l not in pricers:
                pricers[l] = LayerPricer(instance, l, capacity, pricing, tightenings, node_limit, warm=warm)
            tl = left if price_time is None else min(price_time, left)
            _, pattern = pricers[l].price(nu * factor, None if math.isinf(tl) else tl)
            col = make_column(instance, l, pattern)
            key = column_key(col)
            if key not in seen and not np.any(col.usage > capacity):
                seen.add(key)
                new.append(col)
    return new


def price_and_branch(instance: Instance, columns: list[Column], capacity: np.ndarray, *,
                     time_limit: float | None = None, cutoff: float | None = None,
                     threads: int = 1, node_limit: int | None = None) -> tuple[Placement | None, dict]:
    """The best combination of generated columns: one per layer, within the capacities.

    A MILP over binary ``lambda`` (master rows as constraints).  Every solution
    is a feasible placement (each column fits its layer; the capacity rows hold).
    A column equal to an earlier one of ``columns`` (:func:`column_key`) is left out.
    ``cutoff`` (seconds) asks only for something better; ``node_limit`` is
    HiGHS's ``mip_max_nodes`` (a work limit).

    Returns
    -------
    (Placement or None, info)
        ``None`` when HiGHS found no solution (within the cutoff).
    """
    L, N = instance.L, instance.N
    scale = 1e4 / max(empty_latency(instance), 1e-300)
    h = new_highs()
    h.setOptionValue("threads", threads)
    if time_limit is not None:
        h.setOptionValue("time_limit", float(max(0.01, time_limit)))
    if cutoff is not None:
        h.setOptionValue("objective_bound", float(cutoff * scale))
    if node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(node_limit))
    lo = np.concatenate([np.ones(L), np.full(N, -highspy.kHighsInf)])
    hi = np.concatenate([np.ones(L), np.asarray(capacity, float)])
    h.addRows(L + N, lo, hi, 0, np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0))
    unique: dict[bytes, Column] = {}
    for col in columns:
        unique.setdefault(column_key(col), col)
    columns = list(unique.values())
    for col in columns:
        nodes = np.flatnonzero(col.usage)
        rows = np.concatenate([[col.layer], L + nodes]).astype(np.int32)
        vals = np.concatenate([[1.0], col.usage[nodes].astype(float)])
        h.addCol(col.cost * scale, 0.0, 1.0, len(rows), rows, vals)
    n = len(columns)
    h.changeColsIntegrality(n, np.arange(n, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * n))
    t = time.perf_counter()
    run(h)
    info = {"status": h.modelStatusToString(h.getModelStatus()), "wall_s": time.perf_counter() - t, "columns": n}
    if h.getInfo().primal_solution_status < 1:
        return None, info
    lam = np.array(h.getSolution().col_value)
    x = np.zeros((N, L, instance.max_experts), dtype=bool)
    for j in np.flatnonzero(lam > 0.5):
        x[:, columns[j].layer, :] = columns[j].pattern
    info["objective"] = h.getInfo().objective_function_value / scale
    return Placement(x), info
