"""Exact solution by enumerating per-node layer counts: proven optima where the decomposition bound stalls.

The layer decomposition (:mod:`.decomposition`) convexifies each layer; the
layers are coupled only by the ``N`` capacity rows, and its bound is the
Lagrangian dual of that coupling.  What separates it from ``T(opt)`` is the
duality gap of a sum of ``L`` non-convex layer problems tied by ``N`` rows,
which by the Shapley-Folkman lemma comes from at most ``N`` layers: it is
widest when layers are few and large, as on the mixed-precision files, where
neither covers nor the count knapsack hulls close it
(``docs/formulations.md``).

When the layers are small this gap can be closed exactly.  Let
``k[l] = (|P_{l,1}|, ..., |P_{l,N}|)`` be the *count vector* of layer ``l``'s
pattern: how many of its experts each node caches.  The storage a placement
uses depends only on its count vectors, ``u_n = sum_l s_l k[l]_n``, so

.. math::

    T(\\mathrm{opt}) = \\min\\Big\\{\\sum_l g_l(k[l]) :
        \\sum_l s_l k[l]_n \\le Q_n\\ \\forall n\\Big\\},\\qquad
    g_l(k) = \\min\\{c_P : P \\text{ a pattern of layer } l,\\ |P_n| = k_n\\ \\forall n\\}

over count vectors with ``0 <= k_n <= min(m_{n,l}, floor(Q'_n / s_l))``
(``m_{n,l}`` useful elements; caching an element outside the support changes
no latency, so some optimal placement caches only useful ones, and then each
``k[l]_n`` lies in that range).  The outer problem is a multiple-choice
knapsack with ``N`` rows: one binary ``z[l,k]`` per layer and count vector.
Each ``g_l(k)`` is the one-layer level MILP (:class:`.decomposition.LayerPricer`)
with rows ``sum_e x[n,l,e] = k_n``.

**Reduced-cost fixing.**  Let ``nu >= 0`` be capacity prices (the layer
decomposition's), ``m_l <= min_P (c_P + nu . u(P))`` proven lower bounds of
the layers' pricing problems, ``LB = sum_l m_l - nu . Q'`` and ``U`` the
latency of a feasible placement.  For every placement ``x`` with counts
``k[l]`` and patterns ``P_l``, since ``nu . (Q' - u(x)) >= 0``,
``T(x) >= sum_l (c_{P_l} + nu . u(P_l) - m_l) + LB`` and every term of the
sum is ``>= 0``, so ``T(x) < U`` implies
``r_l(k[l]) := g_l(k[l]) + s_l nu . k[l] - m_l < U - LB`` for *each* ``l``.
A count vector whose reduced cost is at least ``U - LB``, by a lower bound on
``g_l`` (first the layer's capacity-free latency, then the MILP's proven
bound), is in no placement better than ``U`` and is dropped.

**Costing the vectors.**  Where a layer is small enough
(:func:`~.count_tables.table_work`), :func:`~.count_tables.count_table`
gives ``g_l(k)`` exactly for all its vectors at once, with an optimal
pattern each; its minimum of ``g_l(k) + s_l nu . k`` is then ``m_l`` itself.
The other layers get the tests above, one vector at a time.

**The certificate.**  The outer MILP over the remaining vectors, with each
``g_l(k)`` replaced by its proven lower bound, has a dual bound ``D`` that is
at most ``sum_l g_l(k[l])`` for every placement better than ``U``; so
``min(U, D) <= T(opt)``.  Its solution, with each chosen vector's pattern, is
a feasible placement (the capacity rows hold); its latency comes from the
evaluator.  With ``count_variables`` the outer MILP also carries integer
``K[l,n] = sum_k k_n z[l,k]``: for binary ``z`` they are integral anyway, so
the optimum and ``D``'s validity are unchanged, but HiGHS can branch on a
layer's count at a node.  Measured, with the vectors of :mod:`.count_tables`
and an optimal start: on ``mixed-mixtral-8x7b-5g-mec`` (10 977 vectors,
600 s) they raise the dual bound to 0.769852 from 0.769153; on
``mixed-mixtral-8x7b-wifi-rtx-L8`` the proof takes 424 nodes with them and
2 167 without; on ``mixed-switch-base-8-wifi-rtx`` 30 384 with them and
14 125 without (and 2 238 with them when the same costs came out of the
bitmask scan, equal to 1e-16: HiGHS's tree there is that sensitive).  When
the outer MILP is solved to optimality and every pricing MILP was, the two
meet: the instance is solved.

References
----------
.. [1] J. W. S. Cassels, "Measures of the non-convexity of sets and the
   Shapley-Folkman-Starr theorem", Math. Proc. Cambridge Phil. Soc. 78, 1975.
.. [2] G. L. Nemhauser, L. A. Wolsey, *Integer and Combinatorial
   Optimization*, Wiley 1988, section II.3.6 (reduced-cost fixing).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Iterable

import highspy
import numpy as np

from ..instances.model import Instance, Placement
from ..objective import empty_latency, latency
from .arrays import SparseRows
from .bounds import target_cutoff
from .count_tables import TABLE_WORK, CountTable, count_table, table_work
from .decomposition import LayerPricer
from .direct import new_highs, run, solve_arrays
from .solve import capacity_free_bound
from .tightenings import DEFAULT_TIGHTENINGS, tightened_capacities, useful_counts

__all__ = ["CountEnumeration", "count_enumeration", "count_vectors", "tabulated", "ENUMERATION_WORK",
           "LONG_BUDGET", "LONG_VECTORS", "MAX_VECTORS"]

ENUMERATION_WORK = 5_000_000
"""``certify`` runs :func:`count_enumeration` when the count vectors (all layers, before fixing) times
the rows of the largest one-layer level model are at most this.  Measured: 5 832 x 384 (Mixtral L8)
and 8 748 x 128 (Switch) are in, and their outer knapsacks keep 629 and 669 vectors and solve in
10-21 s; the 32 x 8 Mixtral files (209 952 x 512-960) and Llama-4-Scout L12 (1 002 252 x 512) are
out: where count tables make them cheap to cost, their outer knapsacks keep 10 000-19 000 vectors,
and whether HiGHS proves more on them than its branch-and-bound on the level model depends on the
budget and the vector count (:data:`LONG_BUDGET`, :data:`LONG_VECTORS`)."""

LONG_BUDGET = 600.0
"""Seconds from which ``certify`` also enumerates the instances of at most :data:`LONG_VECTORS` count
vectors whose every layer has an exact count table (:func:`tabulated`), however large their one-layer
models.  Measured on ``mixed-mixtral-8x7b-5g-mec`` (209 952 vectors, all tabulated; 2 cores, another
job beside each run): with 600 s, branch-and-bound on the level model ends at gap 0.376-0.414 %, the
enumeration at 0.114 % (three runs: the optimal placement 0.772390, 10 406 vectors kept, the outer
MILP stopped at 12 754-13 536 nodes after 338-342 s); with 1 800 s, branch-and-bound ends at 0.371 % and
the enumeration proves the optimum in 979 s; since the LNS before it stops when it stalls
(``certify.LNS_STALL``), 600 s give 0.0999 % (three runs).  The outer MILP's progress varies
several-fold
(``docs/formulations.md``): one earlier 600 s run through it, with slower tables and another cutoff,
ended at 0.406 %, no worse than branch-and-bound.  Since the node-set tables (:mod:`.count_tables`) the
rule also takes ``mixed-mixtral-8x7b-wifi-jetson`` (four shared nodes): at 600 s its gap is 0.800 % in
two runs (14 181 vectors kept, the outer MILP stopped after 9 297-9 326 nodes and 303-338 s), where
branch-and-bound ended at 1.04-1.07 %; 0.244-0.254 % since the enumeration's rung
(``certify.ENUMERATION_RUNG``).  Below 600 s nothing was measured, so nothing changes there."""

LONG_VECTORS = 250_000
"""Count vectors above which the long-budget route (:data:`LONG_BUDGET`) is not taken.  It admits
``mixed-mixtral-8x7b-5g-mec`` and ``mixed-mixtral-8x7b-wifi-jetson`` (209 952 each) and keeps out ``mixed-llama-4-scout-wifi-jetson-L12`` (1 002 252 vectors),
which branch-and-bound proves optimal in 245 s."""

MAX_VECTORS = 2_000_000
"""Count vectors above which :func:`count_enumeration` refuses to start (time and memory stay bounded)."""


@dataclass
class CountEnumeration:
    """Outcome of :func:`count_enumeration`.

    Attributes
    ----------
    bound : float
        Proven lower bound on ``T(opt)`` (seconds), at least ``start_bound``.
    placement : Placement
        The best placement found, or the start; ``latency`` is its latency.
    start_bound : float
        ``LB``, the Lagrangian bound at the prices used for fixing.
    proved : bool
        Whether ``bound`` meets ``latency`` (within ``1e-9`` relative): ``placement`` is optimal.
    vectors, kept, solved : int
        Count vectors in all, left after fixing, and past the floor test (their
        fixed-count LP, and where it did not decide, the MILP, was solved).
    complete : bool
        Every vector was examined and the outer MILP solved to optimality
        (with a ``target_gap``: searched to the end below its cutoff).
    info : dict
        Per-layer counts, the outer MILP's status, nodes and time.
    """

    bound: float
    placement: Placement
    latency: float
    start_bound: float
    proved: bool
    vectors: int
    kept: int
    solved: int
    complete: bool
    info: dict = field(default_factory=dict)


def _ranges(instance: Instance, capacity: np.ndarray) -> np.ndarray:
    """``int (L, N)``: the largest count of each layer at each node (useful elements, and ``Q'_n // s_l``)."""
    size = np.maximum(np.asarray(instance.expert_size, dtype=np.int64), 1)
    return np.minimum(useful_counts(instance).T, np.asarray(capacity, dtype=np.int64)[None, :] // size[:, None])


def _grid(hi: np.ndarray) -> np.ndarray:
    """``int64 (prod(hi + 1), N)``: every count vector ``0 <= k <= hi``, in C order (as ``CountTable.cost``)."""
    return np.array(list(itertools.product(*[range(int(h) + 1) for h in hi])), dtype=np.int64).reshape(-1, len(hi))


def count_vectors(instance: Instance, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS) -> int:
    """How many count vectors :func:`count_enumeration` considers (all layers, before fixing)."""
    hi = _ranges(instance, tightened_capacities(instance, tuple(tightenings)))
    return int(sum(math.prod(int(h) + 1 for h in row) for row in hi))


def tabulated(instance: Instance, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS) -> bool:
    """Whether :func:`count_enumeration` costs every layer's count vectors by an exact count table."""
    hi = _ranges(instance, tightened_capacities(instance, tuple(tightenings)))
    return all(table_work(instance, l, hi[l]) <= TABLE_WORK for l in range(instance.L))


class _CountPricer(LayerPricer):
    """A layer's pricing problem with one count row ``lo_n <= sum_e x[n,l,e] <= hi_n`` per node."""

    def __init__(self, instance: Instance, layer: int, capacity: np.ndarray, tightenings: Iterable[str]):
        super().__init__(instance, layer, capacity, "milp", tightenings, warm=False)
        m, N = self.model, instance.N
        self.first_row = m.n_rows
        A = m.A
        self.model = dataclasses.replace(
            m, A=SparseRows(np.concatenate([A.row, m.n_rows + self.node]),
                            np.concatenate([A.col, np.arange(m.n_x)]),
                            np.concatenate([A.val, np.ones(m.n_x)]), (m.n_rows + N, A.shape[1])),
            row_lo=np.concatenate([m.row_lo, np.zeros(N)]),
            row_hi=np.concatenate([m.row_hi, np.full(N, float(instance.max_experts))]))
        self.warm = True
        self._build()

    def reset_costs(self) -> None:
        """Back to the layer's own costs (after :meth:`price` at some prices)."""
        cols = np.arange(self.model.n_x, dtype=np.int32)
        for h in (self.h, self.h_lp):
            if h is not None:
                h.changeColsCost(len(cols), cols, self.base)

    def below(self, threshold: float, time_limit: float | None) -> tuple[float, np.ndarray | None]:
        """``(proven lower bound on g, a pattern of cost g, or None)`` for the current counts.

        Only an answer below ``threshold`` (seconds of this layer) is sought:
        when the LP bound reaches it, or HiGHS finds nothing below it (its
        objective cutoff), the bound returned is ``threshold`` and no pattern.
        """
        m = self.model
        if not m.n_x:  # nothing of the layer can be cached: its latency is fixed
            return self.floor, self.pattern_of(np.zeros(0))
        first = solve_arrays(m, integer=False, h=self.h_lp, time_limit=time_limit)
        if first.safe_bound is not None:
            low = max(first.safe_bound - self.other, self.floor)
            if low >= threshold:
                return low, None
            x = first.col_value[:m.n_x]
            if np.all(np.minimum(x, 1 - x) <= 1e-9):
                return low, self.pattern_of(x)
        res = solve_arrays(m, integer=True, h=self.h, time_limit=time_limit, cutoff=threshold + self.other)
        if res.status == "Infeasible":
            return threshold, None
        low = max((res.bound if res.bound is not None else -math.inf) - self.other, self.floor)
        return low, None if res.col_value is None else self.pattern_of(res.col_value[:m.n_x])

    def set_counts(self, lo: np.ndarray, hi: np.ndarray) -> None:
        N = self.instance.N
        rows = np.arange(self.first_row, self.first_row + N, dtype=np.int32)
        self.model.row_lo[rows] = lo
        self.model.row_hi[rows] = hi
        for h in (self.h, self.h_lp):
            if h is not None:
                h.changeRowsBounds(N, rows, np.asarray(lo, float), np.asarray(hi, float))


def count_enumeration(instance: Instance, prices: np.ndarray, *, start: Placement | None = None,
                      time_limit: float | None = None, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS,
                      max_vectors: int = MAX_VECTORS, node_limit: int | None = None,
                      threads: int = 1, tabulate: bool = True, count_variables: bool = True,
                      target_gap: float = 0.0) -> CountEnumeration:
    """Solve ``instance`` by its count vectors, with reduced-cost fixing (proofs in the module docstring).

    Parameters
    ----------
    prices : float (N,) >= 0
        Capacity prices (seconds per storage unit), e.g. the layer
        decomposition's :attr:`~.decomposition.Decomposition.prices`; any
        prices give a valid result, good ones fix more vectors.
    start : Placement, optional
        A feasible placement (default: the empty one); its latency is ``U``.
    time_limit : float, optional
        Seconds.  When it ends the enumeration, the result keeps ``start``
        and the bound ``LB``; when it ends the outer MILP, its dual bound.
    max_vectors : int
        Refuse larger instances (:func:`count_vectors`), so that time and
        memory stay bounded.
    node_limit : int, optional
        HiGHS ``mip_max_nodes`` of the outer MILP (a work limit; the
        enumeration itself has no limit but ``time_limit``).
    tabulate : bool
        Cost the vectors of every layer whose :func:`~.count_tables.table_work`
        is at most :data:`~.count_tables.TABLE_WORK` by its exact
        :func:`~.count_tables.count_table` instead of a MILP per vector (the
        same values; ``False`` is for ablation).
    count_variables : bool
        Give the outer MILP the integer counts ``K[l,n]`` to branch on
        (module docstring; ``False`` is for ablation).
    target_gap : float in [0, 1)
        Look only for placements more than this fraction below ``U``: fixing
        and the outer MILP's cutoff use ``G = U (1 - target_gap)`` instead of
        ``U``.  The proofs of the module docstring hold with ``G`` in place of
        ``U`` (no step uses that ``U`` is feasible), so a vector fixed against
        ``G`` is in no placement better than ``G``, and an outer MILP with
        nothing below ``G`` proves ``T(opt) >= G``: a gap of at most
        ``target_gap``, with fewer vectors kept and a smaller tree.  (The
        cutoff is ``G`` raised by ``2e-8``, so that the bound, the cutoff less
        HiGHS's tolerance, is at least ``G``.)  ``0`` (the default): the optimum.

    Returns
    -------
    CountEnumeration

    Raises
    ------
    ValueError
        More than ``max_vectors`` count vectors.
    """
    t0 = time.perf_counter()
    deadline = math.inf if time_limit is None else t0 + float(time_limit)
    total = count_vectors(instance, tightenings)
    if total > max_vectors:
        raise ValueError(f"{total} count vectors, more than max_vectors={max_vectors}")
    L, N, E = instance.L, instance.N, instance.max_experts
    cap = tightened_capacities(instance, tuple(tightenings))
    hi = _ranges(instance, cap)
    size = np.asarray(instance.expert_size, dtype=np.int64)
    nu = np.maximum(np.asarray(prices, dtype=float), 0.0)
    if not (0.0 <= target_gap < 1.0):
        raise ValueError(f"target_gap must be in [0, 1), got {target_gap!r}")
    start = instance.empty_placement() if start is None else start
    upper = latency(instance, start)
    # what the outer search must beat, and the bound when nothing beats it: with a target gap, the
    # cutoff less 1e-8 (bounds.target_cutoff)
    goal = target_cutoff(upper, target_gap)
    proven_at = goal * (1 - 1e-8) if target_gap > 0 else upper
    info: dict = {"layers": []}

    def out(bound: float, placement: Placement, value: float, kept: int, solved: int, complete: bool):
        return CountEnumeration(bound=min(bound, value), placement=placement, latency=value, start_bound=lb,
                                proved=bound >= value * (1 - 1e-9), vectors=total, kept=kept, solved=solved,
                                complete=complete, info={**info, "wall_s": time.perf_counter() - t0})

    tables: list[CountTable | None] = []
    for l in range(L):
        if time.perf_counter() >= deadline:
            info["stopped"] = "time limit in the count tables"
            lb = capacity_free_bound(instance)  # no prices applied yet: the bound with every element cached
            return out(lb, start, upper, 0, 0, False)
        tables.append(count_table(instance, l, hi[l], deadline=deadline) if tabulate else None)
    pricers = [None if t is not None else _CountPricer(instance, l, cap, tightenings) for l, t in enumerate(tables)]
    minima = []
    for l, p in enumerate(pricers):
        if p is None:  # exact: the least reduced cost over the layer's count vectors
            ks = _grid(hi[l])
            minima.append(float(np.min(tables[l].cost.reshape(-1) + ks @ (nu * float(size[l])))))
        else:
            p.set_counts(np.zeros(N), hi[p.layer])
            minima.append(p.price(nu)[0])
    lb = math.fsum(minima) - float(nu @ cap)
    slack = goal - lb
    # the kept vectors: layer, counts, proven lower bound of g, pattern (None: take it from the table)
    kept: list[tuple[int, np.ndarray, float, np.ndarray | None]] = []
    solved = 0
    for l, p in enumerate(pricers):
        ks = _grid(hi[l])
        price = ks @ (nu * float(size[l]))
        layer = {"layer": l, "vectors": len(ks), "table": p is None, "kept": 0}
        info["layers"].append(layer)
        if p is None:
            g = tables[l].cost.reshape(-1)
            keep = np.flatnonzero(np.isfinite(g) & (g + price - minima[l] < slack))
            layer["after_floor"] = int(np.isfinite(g).sum())
            for j in keep:
                kept.append((l, ks[j], float(g[j]), None))
            layer["kept"] = len(keep)
            continue
        fixed_floor = p.floor + price - minima[l] >= slack
        p.reset_costs()
        layer["after_floor"] = int((~fixed_floor).sum())
        for k, pk in zip(ks[~fixed_floor], price[~fixed_floor]):
            if time.perf_counter() >= deadline:
                info["stopped"] = "time limit in the enumeration"
                return out(lb, start, upper, len(kept), solved, False)
            p.set_counts(k, k)
            # a vector is fixed when g >= threshold; the cutoff sits a hair above it, keeping more
            threshold = slack - pk + minima[l]
            g, pattern = p.below(threshold + 1e-9 * upper,
                                 None if time_limit is None else deadline - time.perf_counter())
            solved += 1
            if g >= threshold or not math.isfinite(g):
                continue
            if pattern is None or not np.array_equal(pattern.sum(axis=1), k):
                # no solution within the time left: keep the bound, and mark the vector as pattern-less
                pattern = False
            kept.append((l, k, g, pattern))
            layer["kept"] += 1
    # the outer multiple-choice knapsack over the kept vectors
    scale = 1e4 / max(empty_latency(instance), 1e-300)
    h = new_highs()
    h.setOptionValue("threads", threads)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(0.01, deadline - time.perf_counter()))
    if node_limit is not None:
        h.setOptionValue("mip_max_nodes", int(node_limit))
    # only combinations better than the start (or the target) matter: with none, HiGHS reports
    # infeasible (bound U, or the target's cutoff)
    h.setOptionValue("objective_bound", float(goal * scale * (1 + 1e-9)) if target_gap == 0
                     else float(goal * scale))
    have = np.zeros(L, dtype=bool)
    have[[l for l, *_ in kept]] = True
    if not have.all():
        # a layer with no vector below the slack: no placement beats the start (or the target)
        info["outer"] = {"status": "no vector left in some layer"}
        return out(max(proven_at, lb), start, upper, len(kept), solved, True)
    n = len(kept)
    # rows: one choice per layer (L), capacity (N), K[l,n] = sum_k k_n z[l,k] (L*N); columns: z, then K
    n_k = L * N if count_variables else 0
    col, row, val = [], [], []
    for j, (l, k, _, _) in enumerate(kept):
        nodes = np.flatnonzero(k)
        linked = nodes if count_variables else nodes[:0]
        col.append(np.full(1 + len(nodes) + len(linked), j))
        row.append(np.concatenate([[l], L + nodes, L + N + l * N + linked]))
        val.append(np.concatenate([[1.0], k[nodes] * float(size[l]), k[linked].astype(float)]))
    counted = np.flatnonzero(hi.reshape(-1) > 0) if count_variables else np.zeros(0, dtype=np.int64)
    # the (l, n) of K variables, as l * N + n
    col.append(n + np.arange(len(counted)))
    row.append(L + N + counted)
    val.append(np.full(len(counted), -1.0))
    A = SparseRows(np.concatenate(row), np.concatenate(col), np.concatenate(val), (L + N + n_k, n + len(counted)))
    lp = highspy.HighsLp()
    lp.num_row_, lp.num_col_ = A.shape
    lp.col_cost_ = np.concatenate([[g * scale for _, _, g, _ in kept], np.zeros(len(counted))])
    lp.col_lower_ = np.zeros(A.shape[1])
    lp.col_upper_ = np.concatenate([np.ones(n), hi.reshape(-1)[counted].astype(float)])
    lp.row_lower_ = np.concatenate([np.ones(L), np.full(N, -highspy.kHighsInf), np.zeros(n_k)])
    lp.row_upper_ = np.concatenate([np.ones(L), np.asarray(instance.capacity, float), np.zeros(n_k)])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.csc()
    lp.a_matrix_.num_row_, lp.a_matrix_.num_col_ = A.shape
    lp.integrality_ = [highspy.HighsVarType.kInteger] * A.shape[1]
    h.passModel(lp)
    t = time.perf_counter()
    run(h)
    status = h.modelStatusToString(h.getModelStatus())
    hinfo = h.getInfo()
    info["outer"] = {"status": status, "columns": n, "nodes": int(hinfo.mip_node_count),
                     "wall_s": time.perf_counter() - t}
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return out(max(proven_at, lb), start, upper, n, solved, True)
    dual = hinfo.mip_dual_bound
    bound = dual / scale if math.isfinite(dual) and abs(dual) < highspy.kHighsInf else lb
    if target_gap > 0:
        # HiGHS prunes at the cutoff but keeps solutions above it; with one as its incumbent it can
        # report that solution's value as its dual bound ("Optimal"), which the tree proved only up
        # to the cutoff (seen on the level model, lns.cutoff_branch_and_bound)
        bound = min(bound, proven_at)
    best, value = start, upper
    if hinfo.primal_solution_status >= 1:
        z = np.array(h.getSolution().col_value)
        x = np.zeros((N, L, E), dtype=bool)
        whole = True
        for j in np.flatnonzero(z[:n] > 0.5):
            l, k, _, pattern = kept[j]
            if pattern is None:
                pattern = tables[l].pattern(k, E)
            if pattern is False:
                whole = False
            else:
                x[:, l, :] = pattern
        if whole:
            cand = Placement(x)
            v = latency(instance, cand)
            if v < value and cand.is_feasible(instance):
                best, value = cand, v
    complete = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return out(max(bound, lb), best, value, n, solved, complete)
