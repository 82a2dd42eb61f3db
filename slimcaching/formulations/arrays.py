"""The level MILP (``docs/model.md`` section 1) as flat arrays, and its sub-models.

Same variables and rows as :func:`slimcaching.formulations.level.build_level_model`
(``x``, ``a``, ``b``; ``capacity``, ``avail``, ``whole``), built with numpy
instead of Pyomo so that the methods that solve thousands of small models
(decomposition pricing, large-neighbourhood search) and the large LPs of
``certify`` do not pay Pyomo's per-row cost.  One builder covers:

* a subset of the layers (``layers``): the routing rows of the other layers
  are constants (their latency under ``x_fixed``);
* a subset of free elements (``free``), the others fixed to ``x_fixed``: an
  ``avail[u,l,e,j]`` row whose level ``theta_j`` is already reached by a fixed
  cached copy is dropped (``a <= 1`` is then the right bound), and the others
  keep only the free elements' terms;
* residual capacities (``capacity``) and extra costs on ``x`` (prices of the
  Lagrangian relaxation and of column-generation pricing);
* the tightenings of :mod:`.tightenings`.

Objective scaling: the arrays minimise ``scale * T`` with
``scale = OBJECTIVE_SCALE / T(empty)`` and ``T(empty)``-type constants carried
as an offset, so HiGHS's absolute tolerances (dual feasibility ``1e-7``,
absolute MIP gap) act on numbers of order ``1e4`` instead of ``1e-9..1e-3``
seconds, and its relative gap is the relative gap of the latency itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from ..instances.model import Instance, Placement
from ..objective import empty_latency, set_latency, tau
from .assignment import support
from .level import levels
from .tightenings import DEFAULT_TIGHTENINGS, cardinality_rows, check_tightenings, tightened_capacities

__all__ = ["OBJECTIVE_SCALE", "SparseRows", "LevelArrays", "build_level_arrays", "arrays_placement",
           "start_vector", "layer_latencies", "level_model_rows"]

OBJECTIVE_SCALE = 1e4
"""The scaled objective of the empty placement (seconds are multiplied by ``OBJECTIVE_SCALE / T(empty)``)."""


@dataclass
class SparseRows:
    """A sparse matrix in coordinate form (``row``, ``col``, ``val``; no duplicates)."""

    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    shape: tuple[int, int]

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """``A v``."""
        return np.bincount(self.row, weights=self.val * v[self.col], minlength=self.shape[0])

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``A^T y``."""
        return np.bincount(self.col, weights=self.val * y[self.row], minlength=self.shape[1])

    def csc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(start int32 (n+1,), index int32 (nnz,), value float64 (nnz,))``, column-wise."""
        order = np.lexsort((self.row, self.col))
        start = np.concatenate([[0], np.cumsum(np.bincount(self.col, minlength=self.shape[1]))])
        return start.astype(np.int32), self.row[order].astype(np.int32), self.val[order].astype(float)


@dataclass
class LevelArrays:
    """A level model or sub-model in array form.

    Columns: ``x`` (``n_x``; column ``i`` is the element ``support(instance).elements[x_el[i]]``),
    then ``a`` (``n_a``), then ``b`` (``n_b``), all in ``[0, 1]``.  Rows: ``avail``
    (``n_avail``), ``whole`` (``n_whole``), then one ``capacity`` row per node in
    ``capacity_node`` (row ``capacity_row``) and the ``cardinality`` rows.  The
    objective is ``offset + obj @ v`` in scaled units; ``latency = value / scale``.

    Attributes
    ----------
    tightenings : dict
        The record of :func:`slimcaching.formulations.tightenings.apply_tightenings`.
    """

    instance: Instance
    x_el: np.ndarray
    n_a: int
    n_b: int
    n_avail: int
    n_whole: int
    A: SparseRows
    row_lo: np.ndarray
    row_hi: np.ndarray
    obj: np.ndarray
    offset: float
    scale: float
    capacity_node: np.ndarray
    capacity_row: np.ndarray
    capacity: np.ndarray
    tightenings: dict = field(default_factory=dict)

    @property
    def n_x(self) -> int:
        return len(self.x_el)

    @property
    def n_cols(self) -> int:
        return self.n_x + self.n_a + self.n_b

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]

    def latency(self, scaled_value: float) -> float:
        """Seconds of a scaled objective value that includes :attr:`offset`."""
        return scaled_value / self.scale


def _ranges(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each ``i``, positions ``starts[i] + 0..counts[i]-1``: ``(owner, position)`` flattened."""
    counts = np.asarray(counts, dtype=np.int64)
    owner = np.repeat(np.arange(len(counts)), counts)
    offs = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return owner, np.repeat(np.asarray(starts, dtype=np.int64), counts) + offs


def layer_latencies(instance: Instance, x: np.ndarray) -> np.ndarray:
    """``float64 (L,)``: each layer's share of ``T(x)`` (they sum to ``T(x)``)."""
    sl = set_latency(instance, tau(instance, x))
    return np.bincount(instance.set_layer, weights=instance.coef * sl, minlength=instance.L)


def build_level_arrays(instance: Instance, *, layers: np.ndarray | None = None, free: np.ndarray | None = None,
                       x_fixed: np.ndarray | None = None, capacity: np.ndarray | None = None,
                       x_cost: np.ndarray | None = None, tightenings: Iterable[str] = DEFAULT_TIGHTENINGS,
                       scale: float | None = None) -> LevelArrays:
    """The level model of ``instance`` (or a sub-model) as arrays.

    Parameters
    ----------
    instance : Instance
    layers : bool (L,), optional
        Layers whose routing rows are modelled (default all).
    free : bool (m,), optional
        Which rows of ``support(instance).elements`` get a variable (default all
        in ``layers``); the others keep their value in ``x_fixed``.
    x_fixed : bool (N, L, Emax), optional
        The fixed part of the placement (default: nothing cached).
    capacity : int (N,), optional
        Storage the free elements may use (default ``Q_n`` minus the storage of
        the cached elements that are not free).
    x_cost : float (m,), optional
        Seconds added to the objective per cached free element, indexed like
        ``support(instance).elements``.
    tightenings : iterable of str
        Names from :data:`slimcaching.formulations.tightenings.TIGHTENINGS`
        (applied to the residual capacities).
    scale : float, optional
        Objective scale; default ``OBJECTIVE_SCALE / T(empty)``.

    Returns
    -------
    LevelArrays

    Notes
    -----
    Exactness of a sub-model: for binary free ``x`` the best ``a``/``b`` give
    ``T`` of the combined placement, because an ``avail`` row is dropped only
    where a fixed copy already serves the expert at that level, and the rows of
    other layers do not depend on the free elements.  Hence its optimum is the
    best completion of the fixed part (``tests/test_arrays.py`` checks the
    full model against the Pyomo build and sub-models against the evaluator).
    """
    names = check_tightenings(tuple(tightenings))
    sup = support(instance)
    L, E, N = instance.L, instance.max_experts, instance.N
    scale = OBJECTIVE_SCALE / max(empty_latency(instance), 1e-300) if scale is None else float(scale)
    layers = np.ones(L, dtype=bool) if layers is None else np.asarray(layers, dtype=bool)
    x_fixed = np.zeros((N, L, E), dtype=bool) if x_fixed is None else np.asarray(x_fixed, dtype=bool)
    el = sup.elements
    free = layers[el[:, 1]] if free is None else np.asarray(free, dtype=bool) & layers[el[:, 1]]
    if capacity is None:
        free_x = np.zeros_like(x_fixed)
        free_x[el[free, 0], el[free, 1], el[free, 2]] = True
        held = x_fixed & ~free_x
        capacity = instance.capacity - (held.sum(axis=2) * instance.expert_size[None, :]).sum(axis=1)
    capacity = np.asarray(capacity, dtype=np.int64)
    rows_in = layers[instance.set_layer]
    theta = levels(instance)
    x_el = np.flatnonzero(free)
    n_x = len(x_el)
    col_of_el = -np.ones(len(el), dtype=np.int64)
    col_of_el[x_el] = np.arange(n_x)
    # ---- level counts per (u, l) group, triples and rows in scope
    nlev = np.zeros(instance.U * L, dtype=np.int64)
    dstart = np.zeros(instance.U * L, dtype=np.int64)
    dflat = []
    pos = 0
    for (u, l), th in sorted(theta.items()):
        g = u * L + l
        nlev[g] = len(th) - 1
        dstart[g] = pos
        dflat.append(np.diff(th))
        pos += len(th) - 1
    dflat = np.concatenate(dflat) if dflat else np.zeros(0)
    mr, mt = sup.member_row, sup.member_triple
    sel = rows_in[mr]
    mr, mt = mr[sel], mt[sel]
    tu, tl = sup.triples[:, 0], sup.triples[:, 1]
    t_lev = np.zeros(len(sup.triples), dtype=np.int64)
    used = np.unique(mt)
    t_lev[used] = nlev[tu[used] * L + tl[used]]
    r_group = instance.set_user * L + instance.set_layer
    r_lev = np.where(rows_in, nlev[r_group], 0)
    a_start = np.concatenate([[0], np.cumsum(t_lev)])
    b_start = np.concatenate([[0], np.cumsum(r_lev)])
    n_a, n_b = int(a_start[-1]), int(b_start[-1])
    A0, B0 = n_x, n_x + n_a
    rr: list[np.ndarray] = []
    cc: list[np.ndarray] = []
    vv: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    # ---- avail[t, j]: a - sum_{free options at latency <= theta_j} x <= 0, rows j < level of a fixed copy
    ot, on, olat, oel = sup.option_triple, sup.option_node, sup.option_latency, sup.option_element
    opt = np.flatnonzero(t_lev[ot] > 0)
    j0 = np.zeros(len(ot), dtype=np.int64)          # 0-based level of each option
    og = tu[ot[opt]] * L + tl[ot[opt]]
    for g in np.unique(og).tolist():
        ii = opt[og == g]
        th = theta[(g // L, g % L)]
        j0[ii] = np.searchsorted(th[:-1], olat[ii], side="left")
    is_free = free[oel]
    fixed_copy = opt[(~is_free[opt]) & x_fixed[on[opt], tl[ot[opt]], sup.triples[ot[opt], 2]]]
    lim = t_lev.copy()
    np.minimum.at(lim, ot[fixed_copy], j0[fixed_copy])
    row_of_a = -np.ones(n_a, dtype=np.int64)
    _, apos = _ranges(a_start[:-1], lim)
    row_of_a[apos] = np.arange(len(apos))
    n_avail = len(apos)
    rr.append(row_of_a[apos]); cc.append(A0 + apos); vv.append(np.ones(n_avail))
    fo = opt[is_free[opt]]
    cnt = np.maximum(0, lim[ot[fo]] - j0[fo])
    owner, _ = _ranges(np.zeros(len(fo), dtype=np.int64), cnt)
    rep = fo[owner]
    offs = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    rr.append(row_of_a[a_start[ot[rep]] + j0[rep] + offs]); cc.append(col_of_el[oel[rep]]); vv.append(-np.ones(len(rep)))
    hi.append(np.zeros(n_avail))
    # ---- whole[r, e, j]: b[r, j] - a[t, j] <= 0
    mlev = r_lev[mr]
    owner, _ = _ranges(np.zeros(len(mr), dtype=np.int64), mlev)
    offs = np.arange(len(owner)) - np.repeat(np.cumsum(mlev) - mlev, mlev)
    n_whole = len(owner)
    wrow = n_avail + np.arange(n_whole)
    rr += [wrow, wrow]
    cc += [B0 + b_start[mr[owner]] + offs, A0 + a_start[mt[owner]] + offs]
    vv += [np.ones(n_whole), -np.ones(n_whole)]
    hi.append(np.zeros(n_whole))
    nrow = n_avail + n_whole
    # ---- capacity and cardinality rows on the free elements
    node_x, layer_x = el[x_el, 0], el[x_el, 1]
    size_x = instance.expert_size[layer_x].astype(float)
    counts = np.zeros((N, L), dtype=np.int64)
    np.add.at(counts, (node_x, layer_x), 1)
    cap = tightened_capacities(instance, names, capacity=np.maximum(capacity, 0), counts=counts)
    record = {"applied": list(names), "capacity": {}, "cardinality_rows": 0}
    cap_node, cap_row = [], []
    for n in np.unique(node_x).tolist():
        mine = np.flatnonzero(node_x == n)
        if cap[n] < capacity[n]:
            record["capacity"][instance.node_names[n]] = [int(capacity[n]), int(cap[n])]
        if size_x[mine].sum() > cap[n]:
            rr.append(np.full(len(mine), nrow)); cc.append(mine); vv.append(size_x[mine]); hi.append([float(cap[n])])
            cap_node.append(n); cap_row.append(nrow)
            nrow += 1
    if "cardinality" in names:
        for n, l, k in cardinality_rows(instance, cap, counts):
            mine = np.flatnonzero((node_x == n) & (layer_x == l))
            rr.append(np.full(len(mine), nrow)); cc.append(mine); vv.append(np.ones(len(mine))); hi.append([float(k)])
            nrow += 1
            record["cardinality_rows"] += 1
    # ---- objective: offset - sum w p D_j b  (+ x costs), scaled
    n_cols = n_x + n_a + n_b
    obj = np.zeros(n_cols)
    owner, bpos = _ranges(b_start[:-1], r_lev)
    jj = bpos - b_start[owner]
    obj[B0 + bpos] = -instance.coef[owner] * dflat[dstart[r_group[owner]] + jj]
    if x_cost is not None:
        obj[:n_x] += np.asarray(x_cost, dtype=float)[x_el]
    obj *= scale
    cloud = set_latency(instance, tau(instance, np.zeros_like(x_fixed)))
    fixed = set_latency(instance, tau(instance, x_fixed))
    const = float(instance.coef[rows_in] @ cloud[rows_in] + instance.coef[~rows_in] @ fixed[~rows_in])
    A = SparseRows(np.concatenate(rr).astype(np.int64), np.concatenate(cc).astype(np.int64),
                   np.concatenate(vv).astype(float), (nrow, n_cols))
    return LevelArrays(instance=instance, x_el=x_el, n_a=n_a, n_b=n_b, n_avail=n_avail, n_whole=n_whole, A=A,
                       row_lo=np.full(nrow, -np.inf), row_hi=np.concatenate([np.asarray(h, float) for h in hi]),
                       obj=obj, offset=const * scale, scale=scale, capacity_node=np.asarray(cap_node, np.int64),
                       capacity_row=np.asarray(cap_row, np.int64), capacity=cap, tightenings=record)


def arrays_placement(model: LevelArrays, col_value: np.ndarray, x_fixed: np.ndarray | None = None) -> Placement:
    """The placement of a solution: the fixed part with the free ``x > 0.5`` written over it."""
    inst = model.instance
    el = support(inst).elements[model.x_el]
    x = (np.zeros((inst.N, inst.L, inst.max_experts), dtype=bool) if x_fixed is None
         else np.array(x_fixed, dtype=bool, copy=True))
    x[el[:, 0], el[:, 1], el[:, 2]] = np.asarray(col_value[:model.n_x]) > 0.5
    return Placement(x)


def start_vector(model: LevelArrays, placement: Placement) -> np.ndarray:
    """A feasible column vector for ``placement`` whose objective is ``T(placement)``.

    ``x`` from the placement; ``a[t,j] = min(1, rhs + sum of its x terms)`` over
    its ``avail`` row (1 where the row was dropped); ``b[r,j] = min_e a[e,j]``.
    For a binary ``x`` these are the values the level model's proof of
    exactness uses, so the objective equals ``T`` (the tests check it).
    """
    el = support(model.instance).elements[model.x_el]
    n_x, n_a = model.n_x, model.n_a
    v = np.zeros(model.n_cols)
    v[:n_x] = placement.x[el[:, 0], el[:, 1], el[:, 2]]
    A = model.A
    av = A.row < model.n_avail
    xs = av & (A.col < n_x)
    room = model.row_hi[:model.n_avail] - np.bincount(A.row[xs], weights=A.val[xs] * v[A.col[xs]],
                                                       minlength=model.n_avail)
    a = np.ones(n_a)
    acol = av & (A.col >= n_x)
    np.minimum.at(a, A.col[acol] - n_x, room[A.row[acol]])
    v[n_x:n_x + n_a] = np.clip(a, 0.0, 1.0)
    wh = (A.row >= model.n_avail) & (A.row < model.n_avail + model.n_whole)
    bmask = wh & (A.col >= n_x + n_a)
    amask = wh & (A.col >= n_x) & (A.col < n_x + n_a)
    b_of = np.zeros(model.n_whole, dtype=np.int64)
    a_of = np.zeros(model.n_whole, dtype=np.int64)
    b_of[A.row[bmask] - model.n_avail] = A.col[bmask] - n_x - n_a
    a_of[A.row[amask] - model.n_avail] = A.col[amask] - n_x
    b = np.ones(model.n_b)
    np.minimum.at(b, b_of, v[n_x + a_of])
    v[n_x + n_a:] = b
    return v


def level_model_rows(instance: Instance, layers: np.ndarray | None = None) -> int:
    """The number of ``avail`` and ``whole`` rows of the level model (of ``layers``), without building it.

    Used to decide whether a full LP, or a MILP per layer, is affordable.
    """
    sup = support(instance)
    L = instance.L
    nlev = np.zeros(instance.U * L, dtype=np.int64)
    for (u, l), th in levels(instance).items():
        nlev[u * L + l] = len(th) - 1
    rows_in = np.ones(instance.n_sets, dtype=bool) if layers is None else np.asarray(layers)[instance.set_layer]
    r_lev = np.where(rows_in, nlev[instance.set_user * L + instance.set_layer], 0)
    whole = int(r_lev[sup.member_row].sum())
    trip = np.unique(sup.member_triple[rows_in[sup.member_row]])
    avail = int(nlev[sup.triples[trip, 0] * L + sup.triples[trip, 1]].sum())
    return whole + avail
