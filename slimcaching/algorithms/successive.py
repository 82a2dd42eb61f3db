"""Successive greedy decomposition and the single-node machinery.

The nodes are committed one at a time; for a node ``n``, with every other
node's cache fixed, the *single-node subproblem* "which experts maximise the
extra reduction of ``T`` within ``Q_n``" is solved and committed
(``docs/model.md`` section 1).  The order is either fixed in advance
(``latency``, ``capacity``, ``given`` or an explicit list) or chosen round by
round (``greedy``: solve every remaining node's subproblem and commit the one
with the largest gain, as in TrimCaching [Qu et al. 2024]).

Single-node subproblem.  Let ``tau`` be the serving latencies with node ``n``
empty.  Caching a set ``A`` of layer-``l`` experts at ``n`` lowers
``tau[u,l,e]`` to ``min(tau[u,l,e], t[u,n,l])`` for ``e in A``.  For a routing
row ``S`` of ``(u, l)`` call a member *improvable* when
``tau[u,l,e] > t[u,n,l]``, and sort the improvable members by decreasing
``tau``: ``v_1 >= ... >= v_k > v_{k+1} := t[u,n,l]``.  The set latency after
caching ``A`` is ``v_i`` for the first ``i`` with ``e_i`` not in ``A`` (and
``t[u,n,l]`` when all are in ``A``), so the row's gain telescopes into

.. math::

    g_S(A) = w_u p_{u,l,S} \\sum_{i=1}^{k} [\\{e_1..e_i\\} \\subseteq A]\\,(v_i - v_{i+1}),

a non-negative weighted count of *prefix sets* contained in ``A``.  Summing
over the rows of layer ``l`` gives ``g_l(A) = sum_P W_P [P subseteq A]``.  The
per-layer table is ``h_l(c) = max_{|A| = c} g_l(A)``; the node's extra
reduction is ``sum_l g_l(A_l)``, so the best choice is a (max,+) convolution
of the tables over storage (:mod:`slimcaching.algorithms.knapsack`).

Per-layer tables.  Only the ``m_l`` *useful* experts (improvable in some row)
matter.  Three methods:

* ``modular`` (``layer_solver="auto"``, every routing set of the layer a
  single expert): the prefix sets are singletons, so ``g_l`` is *modular*,
  ``g_l(A) = sum_{e in A} W_e`` with
  ``W_e = sum_{rows (u,l,{e})} w_u p (tau[u,l,e] - t[u,n,l])^+``, and
  ``h_l(c)`` is the sum of the ``c`` largest ``W_e``: exact, ``O(r_l + m_l log m_l)``;
* ``enumerate`` (``m_l <= max_enumerate`` under ``auto``): exact; the prefix
  weights are accumulated on bitmasks and ``g_l`` on all ``2^{m_l}`` subsets is
  their subset-sum (zeta) transform, ``O(m_l 2^{m_l})`` vectorised, after which
  the best subset of every size is one sort;
* ``heuristic``: a documented chain of sets
  (:func:`slimcaching.algorithms.knapsack.layer_table`), a lower bound on ``h_l``
  whose entries are the exact values of their sets.

References
----------
.. [1] G. Qu, Z. Lin, F. Liu, X. Chen and K. Huang, "TrimCaching:
   Parameter-sharing AI model caching in wireless edge networks",
   ICDCS 2024, arXiv:2405.03990.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance
from ..objective import IncrementalEvaluator, latency as _latency, resolve_kernel, set_members, tau as _tau
from ..result import Guarantee, Result, Status, make_result
from .common import reject_unknown
from .knapsack import ENUMERATE_HARD_LIMIT, LayerTable, layer_table, solve_tables

__all__ = ["SingleNodeSolution", "LayerTable", "layer_table", "solve_single_node", "node_order",
           "successive", "singleton_layers", "exact_tables", "uniform_disjoint", "make_guarantees",
           "ORDERS", "EPS_BOUNDS"]

LAYER_SOLVERS = ("auto", "enumerate", "heuristic")
ORDERS = ("greedy", "latency", "capacity", "given")
EXACT_TABLE_METHODS = ("enumerate", "modular")
EPS_BOUNDS = (0.5, 0.2, 0.1, 0.05, 0.01)
"""The ``eps`` thresholds at which the ``(1 - eps)``-step guarantees are stated as data."""


@dataclass
class SingleNodeSolution:
    """The chosen cache of one node.

    Attributes
    ----------
    elements : int64 (k, 3)
        The ``(n, l, e)`` triples to cache at node ``n``.
    value : float
        Predicted extra reduction ``R(others + elements) - R(others)``, where
        ``others`` is the evaluator's placement with node ``n`` emptied when
        ``exclude_current`` (as is) otherwise; equal to the realised one up
        to rounding (the tables are exact values of their sets).
    layer_methods : list of str (L,)
        ``"modular"``, ``"enumerate"`` or ``"heuristic"`` per layer.
    exact : bool
        Every table exact (``modular`` or ``enumerate``) and the DP exact:
        ``value`` is the optimum of the single-node subproblem.
    info : dict
        ``useful`` experts per layer, DP ``method`` / ``states``, ``units`` (gcd).
    """

    elements: np.ndarray
    value: float
    layer_methods: list[str]
    exact: bool
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------ one node
def _check_options(layer_solver: str, max_enumerate: int, eps: float | None) -> None:
    if layer_solver not in LAYER_SOLVERS:
        raise InputError("--layer-solver", ("", f"layer_solver must be one of {', '.join(LAYER_SOLVERS)}, "
                                                f"got {layer_solver!r}"))
    if not isinstance(max_enumerate, (int, np.integer)) or not 0 <= max_enumerate <= ENUMERATE_HARD_LIMIT:
        raise InputError("--max-enumerate", ("", f"max_enumerate must be an integer in 0..{ENUMERATE_HARD_LIMIT}, "
                                                 f"got {max_enumerate!r}"))
    if eps is not None and not (isinstance(eps, (int, float)) and 0 < eps < 1):
        raise InputError("--eps", ("", f"eps must satisfy 0 < eps < 1, got {eps!r}"))


def singleton_layers(instance: Instance) -> np.ndarray:
    """bool (L,): every activated set of layer ``l`` (of every user) is a single expert."""
    v = instance.__dict__.get("_singleton_layers")
    if v is None:
        multi = np.zeros(instance.L, dtype=bool)
        multi[np.unique(instance.set_layer[instance.set_sizes > 1])] = True
        v = ~multi
        object.__setattr__(instance, "_singleton_layers", v)
    return v


def _modular_tables(inst: Instance, tau0: np.ndarray, n: int, layers: list[int],
                    capacity: int) -> dict[int, LayerTable]:
    """Exact tables of singleton layers: ``h_l(c)`` is the sum of the ``c`` largest ``W_e``.

    In a layer whose activated sets are single experts every prefix set is a
    singleton, so ``g_l(A) = sum_{e in A} W_e`` with
    ``W_e = sum_u w_u p[u,l,{e}] (tau0[u,l,e] - t[u,n,l])^+`` (non-negative),
    and the best ``c``-set takes the ``c`` largest weights.  One pass over the
    rows of ``layers`` and a sort per layer.
    """
    rows = np.flatnonzero(np.isin(inst.set_layer, layers))
    u, lay = inst.set_user[rows], inst.set_layer[rows]
    e = inst.set_experts[rows, 0]
    gain = inst.coef[rows] * np.maximum(tau0[u, lay, e] - inst.latency[u, n, lay], 0.0)
    E = inst.max_experts
    W = np.bincount(lay * E + e, weights=gain, minlength=inst.L * E).reshape(inst.L, E)
    out = {}
    for l in layers:
        w = W[l, : int(inst.experts[l])]
        order = np.argsort(-w, kind="stable").astype(np.int64)
        m = int((w > 0).sum())
        top = min(m, capacity // int(inst.expert_size[l]))
        h = np.concatenate([[0.0], np.cumsum(w[order[:top]])])
        out[l] = LayerTable(h, [order[:c] for c in range(top + 1)], "modular", m)
    return out


def _node_tables(inst: Instance, tau0: np.ndarray, n: int, capacity: int, layer_solver: str,
                 max_enumerate: int, tables: list[LayerTable] | None = None,
                 layers: set[int] | None = None, deadline: float | None = None) -> list[LayerTable] | None:
    """The per-layer tables of node ``n``: all of them, or only ``layers`` (the others kept from ``tables``).

    ``auto`` builds ``modular`` tables for singleton layers (all in one
    pass) and otherwise enumerates up to ``max_enumerate`` useful experts
    (else the heuristic).  ``deadline`` (a ``time.perf_counter()`` value) is
    checked before the modular pass and before every other table; ``None``
    is returned when it has passed.
    """
    out = list(tables) if tables is not None else [None] * inst.L
    todo = range(inst.L) if layers is None else sorted(layers)
    single = singleton_layers(inst) if layer_solver == "auto" else np.zeros(inst.L, dtype=bool)
    mod = [l for l in todo if single[l]]
    if mod:
        if deadline is not None and time.perf_counter() > deadline:
            return None
        for l, tb in _modular_tables(inst, tau0, n, mod, capacity).items():
            out[l] = tb
    for l in todo:
        if not single[l]:
            if deadline is not None and time.perf_counter() > deadline:
                return None
            out[l] = layer_table(inst, tau0, n, l, cmax=capacity // int(inst.expert_size[l]),
                                 layer_solver=layer_solver, max_enumerate=max_enumerate)
    return out


def _solve_node_tables(inst: Instance, n: int, tables: list[LayerTable], capacity: int,
                       eps: float | None, deadline: float | None = None) -> SingleNodeSolution | None:
    """The (max,+) convolution of node ``n``'s tables over its storage, as a :class:`SingleNodeSolution`
    (``None`` when ``deadline`` passes during the DP)."""
    sizes = inst.expert_size
    active = [l for l in range(inst.L) if len(tables[l].h) > 1 and tables[l].h[-1] > 0]
    g = math.gcd(*(int(sizes[l]) for l in active)) if active else 1
    w = [int(sizes[l]) // g for l in active]
    sol = solve_tables(w, [tables[l].h for l in active], capacity // g, eps, deadline,
                       kernel=resolve_kernel("auto", set_members(inst)))
    if sol is None:
        return None
    elements = []
    for l, c in zip(active, sol.counts):
        for e in tables[l].sets[int(c)]:
            elements.append((n, l, int(e)))
    methods = [t.method for t in tables]
    exact = all(mth in EXACT_TABLE_METHODS for mth in methods) and sol.method in ("exact", "concave")
    return SingleNodeSolution(
        elements=np.asarray(elements, dtype=np.int64).reshape(-1, 3), value=float(sol.value),
        layer_methods=methods, exact=exact,
        info={"useful": [t.useful for t in tables], "dp": sol.method, "states": sol.info.get("states"),
              "units": g, "capacity": capacity},
    )


def solve_single_node(ev: IncrementalEvaluator, n: int, *, capacity: int | None = None,
                      layer_solver: str = "auto", max_enumerate: int = 16, eps: float | None = None,
                      exclude_current: bool = True, deadline: float | None = None) -> SingleNodeSolution | None:
    """Best cache for node ``n`` with every other node's cache fixed as in ``ev``.

    Maximises the extra reduction ``R(others + A) - R(others)`` over sets
    ``A`` of layer experts at ``n`` with ``sum s_l |A_l| <= capacity``.

    ``ev`` is **not** modified.  With ``exclude_current=True`` (default) the
    subproblem is solved as if node ``n`` were empty: ``others`` is ``ev``'s
    placement without node ``n``'s cache, and ``capacity`` defaults to
    ``Q_n``.  To commit, the caller removes node ``n``'s current elements and
    adds ``elements`` (e.g. ``ev.apply(add=sol.elements, remove=current)``).
    With ``exclude_current=False``, ``others`` is ``ev``'s whole placement,
    the returned elements are additions on top of it and ``capacity``
    defaults to the free space ``Q_n - used_n``.

    Parameters
    ----------
    ev : IncrementalEvaluator
    n : int
        Node index.
    capacity : int, optional
        Storage available for the chosen elements.
    layer_solver : {"auto", "enumerate", "heuristic"}
        Per-layer table method; ``auto`` builds the exact ``modular`` table
        for layers whose activated sets are single experts and enumerates
        layers with at most ``max_enumerate`` useful experts.
    max_enumerate : int
    eps : float, optional
        ``None``: exact DP over layers; ``0 < eps < 1``: approximate (max,+)
        convolution with value ``>= (1 - eps)`` times the exact DP value.
    exclude_current : bool
    deadline : float, optional
        A ``time.perf_counter()`` value; checked before each layer's table and
        each layer of the DP over storage.

    Returns
    -------
    SingleNodeSolution or None
        ``None`` when the deadline passed before the tables were complete
        (nothing is chosen for the node).

    Notes
    -----
    Cost: one ``tau`` recomputation when node ``n`` holds experts, the tables
    (``O(r_l K log K)`` per layer plus ``O(m_l 2^{m_l})`` when enumerated,
    ``O(r_l + m_l log m_l)`` when modular, or the heuristic chain), and the
    DP over ``Q / g`` storage units, ``g`` the gcd of the sizes (or the
    approximate DP, independent of ``Q``).
    """
    _check_options(layer_solver, max_enumerate, eps)
    inst = ev.instance
    if exclude_current and ev.x[n].any():
        x = ev.x.copy()
        x[n] = False
        tau0 = _tau(inst, x)
    else:
        tau0 = ev.tau
    if capacity is None:
        capacity = int(inst.capacity[n]) - (0 if exclude_current else int(ev.used[n]))
    capacity = max(0, int(capacity))
    tables = _node_tables(inst, tau0, n, capacity, layer_solver, max_enumerate, deadline=deadline)
    if tables is None:
        return None
    return _solve_node_tables(inst, n, tables, capacity, eps, deadline)


class NodeTables:
    """The per-layer tables of every node's subproblem with the node emptied, kept between solves.

    Node ``n``'s table of layer ``l`` depends only on the other nodes' caches
    in layer ``l`` (``tau`` with ``n`` emptied, module docstring) and on
    ``Q_n``, so it is rebuilt only when another node's layer-``l`` cache
    changed since it was built (:meth:`changed` counts the changes per node
    and layer).  A solve from kept tables is the solve from scratch
    (:func:`solve_single_node` with ``exclude_current=True``), bit for bit.
    """

    def __init__(self, instance: Instance, layer_solver: str = "auto", max_enumerate: int = 16,
                 eps: float | None = None):
        _check_options(layer_solver, max_enumerate, eps)
        self.instance = instance
        self.options = (layer_solver, max_enumerate)
        self.eps = eps
        self.version = np.zeros((instance.N, instance.L), dtype=np.int64)
        self.tables: dict[int, list[LayerTable]] = {}
        self.built_at: dict[int, np.ndarray] = {}
        self.built = 0

    def changed(self, n: int, layers) -> None:
        """Node ``n``'s cache changed in ``layers``."""
        self.version[n, np.asarray(sorted(set(int(l) for l in layers)), dtype=np.int64)] += 1

    def stale(self, n: int) -> np.ndarray:
        """int64: the layers of node ``n`` whose tables another node's change made stale (all when never built)."""
        others = self.version.sum(axis=0) - self.version[n]
        if n not in self.built_at:
            return np.arange(self.instance.L)
        return np.flatnonzero(others != self.built_at[n])

    def solve(self, ev: IncrementalEvaluator, n: int, deadline: float | None = None) -> SingleNodeSolution | None:
        """:func:`solve_single_node` ``(ev, n, exclude_current=True)`` from the kept tables."""
        inst = self.instance
        layers = self.stale(n)
        cap = int(inst.capacity[n])
        tables = self.tables.get(n)
        if len(layers):
            x = ev.x
            if x[n].any():
                x = x.copy()
                x[n] = False
            tau0 = _tau(inst, x) if x is not ev.x else ev.tau
            tables = _node_tables(inst, tau0, n, cap, *self.options, tables,
                                  None if n not in self.tables else set(int(l) for l in layers), deadline=deadline)
            if tables is None:
                return None
            self.tables[n] = tables
            self.built_at[n] = self.version.sum(axis=0) - self.version[n]
            self.built += len(layers)
        return _solve_node_tables(inst, n, tables, cap, self.eps, deadline)


# ------------------------------------------------------------ orders
def node_order(instance: Instance, order: str | Sequence = "latency") -> list[int]:
    """Visiting order of the nodes for a fixed order.

    ``"latency"``: weighted mean latency ``sum_u w_u mean_l t[u,n,l]`` over the
    users reaching ``n`` (normalised by their weight), ascending; nodes nobody
    reaches last.  ``"capacity"``: ``Q_n`` descending.  ``"given"``: as listed.
    A sequence of node names or indices gives the order explicitly (a
    permutation of all nodes).  Ties keep the listed order.  ``"greedy"`` is
    chosen round by round inside :func:`successive`; as a static order (for
    example the passes of ``cyclic``) it is the ``latency`` order, which is
    also its tie-break rule.
    """
    N = instance.N
    if isinstance(order, str) and order in ORDERS:
        if order == "given":
            return list(range(N))
        if order == "capacity":
            return [int(i) for i in np.argsort(-instance.capacity, kind="stable")]
        reach = instance.reachable()                                   # (U, N)
        mean_t = np.where(reach, np.where(np.isfinite(instance.latency), instance.latency, 0).mean(axis=2), 0)
        wsum = (instance.weight[:, None] * reach).sum(axis=0)
        score = np.where(wsum > 0, (instance.weight[:, None] * mean_t).sum(axis=0) / np.maximum(wsum, 1e-300),
                         np.inf)
        return [int(i) for i in np.argsort(score, kind="stable")]
    if isinstance(order, str) or not isinstance(order, Sequence):
        raise InputError("--order", ("", f"order must be one of {', '.join(ORDERS)} or a list of node names, "
                                         f"got {order!r}"))
    index = {name: i for i, name in enumerate(instance.node_names)}
    out = []
    for item in order:
        if isinstance(item, str) and item in index:
            out.append(index[item])
        elif isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < N:
            out.append(int(item))
        else:
            raise InputError("--order", ("", f"unknown node {item!r} in order"))
    if sorted(out) != list(range(N)):
        raise InputError("--order", ("", "order must list every node exactly once"))
    return out


def _record(inst: Instance, n: int, sol: SingleNodeSolution) -> dict:
    return {"node": inst.node_names[n], "value": sol.value, "layer_methods": sol.layer_methods,
            "useful": sol.info["useful"], "dp": sol.info["dp"], "units": sol.info["units"],
            "cached": int(len(sol.elements)), "exact": sol.exact}


def _commit(ev: IncrementalEvaluator, sol: SingleNodeSolution) -> None:
    if len(sol.elements):
        ev.apply(add=[tuple(int(v) for v in row) for row in sol.elements])


def _fixed_rounds(ev: IncrementalEvaluator, nodes: list[int], single: dict, deadline: float):
    """Commit the nodes in the given order; the nodes not reached by the deadline stay empty."""
    visited, stopped = [], False
    for n in nodes:
        sol = None if time.perf_counter() > deadline else solve_single_node(ev, n, deadline=deadline, **single)
        if sol is None:
            stopped = True
            break
        _commit(ev, sol)
        visited.append(_record(ev.instance, n, sol))
    return visited, stopped, {"single_node_solves": len(visited), "tables_built": len(visited) * ev.instance.L}


def _commit_and_mark(ev: IncrementalEvaluator, sol: SingleNodeSolution, remaining: list[int],
                     dirty: dict[int, set[int] | None]) -> None:
    """Commit ``sol`` and mark the ``(node, layer)`` tables of ``remaining`` nodes it changed.

    The table of node ``m`` and layer ``l`` depends on ``tau[u,l,:]`` only
    through the members with ``tau[u,l,e] > t[u,m,l]`` of users ``u``
    reaching ``m`` (module docstring).  The commit lowers ``tau[u,l,e]`` for
    the committed ``(l, e)``; the table is stale iff one of those drops
    started above ``t[u,m,l]`` (a member at or below it stays unimprovable).
    """
    inst = ev.instance
    els = [tuple(int(v) for v in row) for row in sol.elements]
    by_layer: dict[int, list[int]] = {}
    for _, l, e in els:
        by_layer.setdefault(l, []).append(e)
    before = {l: ev.tau[:, l, es].copy() for l, es in by_layer.items()}
    _commit(ev, sol)
    for l, es in by_layer.items():
        old = before[l]                                                  # (U, k)
        dropped = ev.tau[:, l, es] < old
        if not dropped.any():
            continue
        for m in remaining:
            if m in dirty and dirty[m] is None:
                continue
            if np.any(dropped & (old > inst.latency[:, m, l][:, None])):
                dirty.setdefault(m, set()).add(l)


def _greedy_rounds(ev: IncrementalEvaluator, single: dict, deadline: float):
    """Greedy order: each round solves every remaining node's subproblem and commits the largest gain.

    Only the tables a commit changed are rebuilt (:func:`_commit_and_mark`);
    a node none of whose tables changed keeps its solution, which is then
    still exact for the current placement.  Ties (gains within ``1e-12
    T(empty)`` of the largest) go to the node first in the ``latency`` order.
    At the deadline the nodes not yet committed get the last cache computed
    for them, if any (still feasible; possibly computed before later commits).
    """
    inst = ev.instance
    layer_solver, max_enumerate, eps = single["layer_solver"], single["max_enumerate"], single["eps"]
    remaining = node_order(inst, "latency")                  # kept in tie-break order
    tol = 1e-12 * max(ev.empty_latency, 1e-300)
    tables: dict[int, list[LayerTable]] = {}
    cand: dict[int, SingleNodeSolution] = {}
    dirty: dict[int, set[int] | None] = {n: None for n in remaining}
    visited, stopped, solves, built = [], False, 0, 0
    while remaining:
        for m in remaining:
            if m not in dirty:
                continue
            if time.perf_counter() > deadline:
                stopped = True
                break
            cap = int(inst.capacity[m])
            layers = dirty[m]
            new = _node_tables(inst, ev.tau, m, cap, layer_solver, max_enumerate, tables.get(m), layers,
                               deadline=deadline)
            if new is None:
                stopped = True
                break
            sol_m = _solve_node_tables(inst, m, new, cap, eps, deadline)
            if sol_m is None:
                stopped = True
                break
            del dirty[m]
            tables[m] = new
            cand[m] = sol_m
            solves += 1
            built += inst.L if layers is None else len(layers)
        if stopped:
            break
        best = max(cand[m].value for m in remaining)
        pick = next(m for m in remaining if cand[m].value >= best - tol)
        sol = cand.pop(pick)
        remaining.remove(pick)
        _commit_and_mark(ev, sol, remaining, dirty)
        visited.append({**_record(inst, pick, sol), "round": len(visited) + 1, "candidates": len(remaining) + 1})
    if stopped:
        for m in sorted((m for m in remaining if m in cand), key=lambda m: -cand[m].value):
            _commit(ev, cand[m])
            visited.append({**_record(inst, m, cand[m]), "round": None, "stale": m in dirty})
    return visited, stopped, {"single_node_solves": solves, "tables_built": built}


# ------------------------------------------------------------ guarantees as data
def exact_tables(instance: Instance, params: dict) -> bool:
    """Whether every per-layer table is exact under ``params``.

    ``enumerate`` is exact by construction (it refuses layers it cannot
    enumerate); ``auto`` is exact when every layer is a singleton layer
    (``modular`` table) or has at most ``max_enumerate`` experts (so at most
    that many useful ones: enumerated); ``heuristic`` is never claimed exact.
    """
    solver = params.get("layer_solver", "auto")
    if solver == "enumerate":
        return True
    if solver != "auto":
        return False
    limit = int(params.get("max_enumerate", 16))
    return bool(np.all(singleton_layers(instance) | (instance.experts <= limit)))


def uniform_disjoint(instance: Instance) -> bool:
    """The ``K >= 2`` regime of Theorem 4 in :func:`successive`.

    (i) every user reaches every node and ``t[u,n,l]`` does not depend on
    ``n`` (exact equality); (ii) the distinct activated sets of each layer,
    over all users, are pairwise disjoint; (iii) every set fits every node:
    ``|S| s_l <= min_n Q_n``.
    """
    lat = instance.latency
    if instance.N == 0 or not np.all(np.isfinite(lat)) or not np.all(lat == lat[:, :1, :]):
        return False
    sizes = instance.set_sizes
    if len(sizes) and int((sizes * instance.expert_size[instance.set_layer]).max()) > int(instance.capacity.min()):
        return False
    rows = np.unique(np.column_stack([instance.set_layer, np.sort(instance.set_experts, axis=1)]), axis=0)
    members = rows[:, 1:]
    keys = (rows[:, :1] * instance.max_experts + members)[members >= 0]
    return len(np.unique(keys)) == len(keys)


def _eps_within(params: dict, bound: float | None) -> bool:
    eps = params.get("eps")
    if bound is None:
        return eps is None
    return eps is not None and float(eps) <= bound


def make_guarantees(bound: float | None = None) -> tuple[Guarantee, ...]:
    """The proven guarantees of the successive decomposition with exact DP (``bound=None``) or ``eps <= bound``.

    ``alpha = 1`` (exact DP) or ``1 - bound``: every single-node step is
    ``alpha``-approximate when the tables are exact.  Proofs: Theorems 1, 2
    and 4 in the Notes of :func:`successive`.
    """
    alpha = 1.0 if bound is None else 1.0 - bound
    dp = "exact DP (eps = None)" if bound is None else f"eps <= {bound:g}"
    step = "" if bound is None else "; (max,+) steps within 1 - eps (Ibarra and Kim, J. ACM 1975)"
    return (
        Guarantee(
            ratio=alpha,
            regime=f"one node, exact per-layer tables, {dp}",
            reference="the single-node subproblem is the problem (Theorem 1 of successive)" + step,
            applies=lambda inst, p: inst.N == 1 and exact_tables(inst, p) and _eps_within(p, bound),
        ),
        Guarantee(
            ratio=alpha / (1 + alpha),
            regime=f"K = 1 (every activated set one expert), any nodes, any order, exact per-layer tables, {dp}",
            reference=("locally greedy over a partition matroid, Fisher, Nemhauser and Wolsey, Math. Program. "
                       "Study 8:73-87, 1978; alpha-approximate steps, Goundan and Schulz, MIT 2007 "
                       "(Theorem 2 of successive)" + step),
            applies=lambda inst, p: inst.max_set_size <= 1 and exact_tables(inst, p) and _eps_within(p, bound),
        ),
        Guarantee(
            ratio=alpha / (2 * (1 + alpha)),
            regime=(f"identical node latencies, all nodes reachable, disjoint activated sets per layer, every set "
                    f"fits every node, any order, exact per-layer tables, {dp}"),
            reference=("next-fit split of the optimum plus the bin-by-bin greedy for separable assignment, "
                       "Cohen, Katzir and Raz, Inf. Process. Lett. 100(4), 2006 (Theorem 4 of successive)" + step),
            applies=lambda inst, p: uniform_disjoint(inst) and exact_tables(inst, p) and _eps_within(p, bound),
        ),
    )


GUARANTEES = make_guarantees(None) + tuple(g for b in EPS_BOUNDS for g in make_guarantees(b))
"""Every guarantee of the successive decomposition (exact DP and each ``eps`` threshold)."""


def _guarantee_text(guarantees: Sequence[Guarantee], instance: Instance, params: dict) -> str | None:
    """The strongest proven guarantee that applies (and every conjectured one, marked), or ``None``."""
    hold = [g for g in guarantees if g.applies(instance, params)]
    proven = [g for g in hold if g.proven]
    texts = [max(proven, key=lambda g: g.ratio).text()] if proven else []
    texts += [g.text() for g in hold if not g.proven]
    return "; ".join(texts) or None


# ------------------------------------------------------------ the algorithm
def successive(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
               order: str | Sequence = "greedy", layer_solver: str = "auto", max_enumerate: int = 16,
               eps: float | None = None, _name: str = "successive", **unknown) -> Result:
    """Successive greedy decomposition over nodes with an exact DP per node.

    Problem: minimise ``T(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``
    (``docs/model.md`` section 1).  Nodes are committed one at a time; each
    solves the single-node subproblem (:func:`solve_single_node`) with the
    committed nodes' caches fixed and the others empty, and commits its cache.
    The order is fixed (``latency``, ``capacity``, ``given``, a list) or
    ``greedy``: every round solves the subproblem of every remaining node and
    commits the one with the largest gain (TrimCaching's successive greedy [3]_).

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Unused (the method is deterministic); recorded.
    time_limit : float, optional
        Seconds, checked before every single-node solve and every layer
        table.  On expiry the status is ``time_limit``; with a fixed order
        the node being solved and the nodes not yet visited stay empty, with
        ``greedy`` the nodes not yet committed get the last cache computed
        for them (if any).
    order : {"greedy", "latency", "capacity", "given"} or sequence of node names / indices
        ``greedy`` (default): adaptive, ties to the node first in the
        ``latency`` order; the others: :func:`node_order`.  ``greedy`` is
        the default because it is TrimCaching's rule and, measured on the
        shipped suites (``benchmarks/perf_orders.py``), it is (co-)best on
        more instances than any fixed order at 1.3-2x the CPU time;
        it has the same worst-case guarantees as the fixed orders.
    layer_solver : {"auto", "enumerate", "heuristic"}
        Per-layer tables: exact ``modular`` tables for layers whose activated
        sets are single experts and exact enumeration up to
        ``max_enumerate`` useful experts (``auto``), enumeration only, or the
        chain heuristic only.
    max_enumerate : int
        ``auto`` enumerates layers with at most this many useful experts (<= 22).
    eps : float, optional
        Approximate convolution (see :func:`~slimcaching.algorithms.maxconv.maxconv`).

    Returns
    -------
    Result
        ``info["nodes"]``: per committed node (in commit order) its per-layer
        methods, useful experts, DP method, predicted gain (and, for
        ``greedy``, the round and the number of candidates);
        ``info["single_node_solves"]``, ``info["tables_built"]``: the work done;
        ``Result.guarantee``: the strongest proven guarantee whose regime holds.

    Raises
    ------
    InputError
        An unknown parameter, a bad ``order``, ``layer_solver``,
        ``max_enumerate`` or ``eps``, or a layer too large for ``enumerate``.

    Notes
    -----
    Write ``G_i`` for the elements committed after ``i`` steps, ``n_i`` for
    the node committed at step ``i`` and ``O_n`` for node ``n``'s cache in an
    optimal placement.  A step is *alpha-approximate* when
    ``R(G_i) - R(G_{i-1}) >= alpha (R(G_{i-1} + A) - R(G_{i-1}))`` for every
    feasible cache ``A`` of ``n_i``.  With exact tables (``modular`` or
    ``enumerate``; see :func:`exact_tables`) the exact DP gives
    ``alpha = 1`` and the value-scaled DP of ``maxconv`` ``alpha = 1 - eps``.
    None of the bounds below uses how the order was chosen, so each holds for
    every order, fixed or greedy.

    **Theorem 1 (one node).**  ``N = 1``: ``R >= alpha R(opt)``; with the
    exact DP the result is optimal (status ``optimal``).

    **Theorem 2 (K = 1, any number of nodes).**  If every activated set is a
    single expert, ``R >= alpha / (1 + alpha) R(opt)``: ``1/2`` for
    ``successive``, ``(1 - eps)/(2 - eps) >= (1 - eps)/2`` for ``maxconv``.

    *Proof.*  With ``K = 1``, ``R`` is a weighted facility-location function
    of the set of cached elements, monotone and submodular [5]_.  For sets
    ``X subset Y`` and any set ``B``,
    ``R(X + B) - R(X) >= R(Y + B) - R(Y)`` (add ``B`` one element at a time).
    Hence

    .. math::

        R(\\text{opt}) \\le R(G_N \\cup \\text{opt})
          \\le R(G_N) + \\sum_i [R(G_N + O_{n_i}) - R(G_N)]
          \\le R(G_N) + \\sum_i [R(G_{i-1} + O_{n_i}) - R(G_{i-1})]
          \\le R(G_N) + \\tfrac{1}{\\alpha} \\sum_i [R(G_i) - R(G_{i-1})]
          = (1 + \\tfrac{1}{\\alpha}) R(G_N),

    by monotonicity, submodularity (twice, with ``G_{i-1} subset G_N``) and
    the step property (``O_{n_i}`` is a feasible cache of ``n_i``).  Viewing
    a node's whole cache as one element of its block, the blocks form a
    partition matroid and this is the "locally greedy" bound of Fisher,
    Nemhauser and Wolsey [4]_ (the greedy order is their greedy algorithm
    over that matroid, with the same bound); with approximate steps it is
    the ``alpha/(1 + alpha)`` of Goundan and Schulz [6]_.  TrimCaching [3]_
    states ``(1 - eps)/2``.  With exact steps the bound ``1/2`` is tight
    up to any ``delta > 0`` for the greedy and the latency orders
    (``tests/test_successive_orders.py`` has a two-node instance with ratio
    ``(1 + delta)/(2 + delta) + O(eta)``); whether ``alpha/(1 + alpha)`` is
    tight for ``alpha < 1`` was not examined.

    Exact tables at ``K = 1``: the layer gain is modular (module docstring),
    so the ``modular`` table is exact; ``enumerate`` is exact by
    construction.  The chain heuristic is not claimed exact: its choices
    look at the heaviest rows only, so ``layer_solver="heuristic"`` is
    outside every regime.

    **Theorem 3 (K >= 2: no constant factor).**  For no order and no
    ``c > 0`` does ``R >= c R(opt)`` hold on all instances with ``K = 2``.
    (a) ``docs/worst-case/successive-k2.json``: ratio 0.  Its optimum
    spreads an activated set over two nodes that cannot each hold it, so
    every single-node subproblem has gain 0 in every round.  (b) Even when
    every set fits one node, all nodes are reachable and all node
    latencies are equal: ``N`` nodes of capacity 2, real experts
    ``r_1..r_{2N}`` with every pair activated with probability ``p``, and
    ``N`` disjoint decoy pairs with probability ``(1 + delta) p``.  Every
    step prefers an uncovered decoy pair (``(1 + delta) p`` against ``p``
    for a real pair), so ``R = N (1 + delta) p (c - t)`` while spreading
    the real experts covers ``N (2N - 1)`` pairs: the ratio is at most
    ``(1 + delta)/(2N - 1)``, which tends to 0 (tested for ``N = 2, 3``).
    What fails is the first inequality of Theorem 2's proof: with
    co-activation, the optimum's caches can be worth more together than
    the sum of their gains one at a time.

    **Theorem 4 (a K >= 2 regime with a constant).**  Suppose (i) every
    user reaches every node and ``t[u,n,l] = t[u,l]`` for every ``n``;
    (ii) the distinct activated sets of each layer (over all users) are
    pairwise disjoint; (iii) every set fits every node,
    ``|S| s_l <= min_n Q_n`` (:func:`uniform_disjoint`).  Then
    ``R >= alpha / (2 (1 + alpha)) R(opt)``: ``1/4`` for ``successive``,
    ``(1 - eps) / (2 (2 - eps))`` for ``maxconv``.

    *Proof.*  By (i) an expert is served at ``t[u,l]`` when some node holds
    it, so ``R`` depends only on the union ``U`` of the caches:
    ``R(U) = sum_S W_S [S subset U]`` with
    ``W_S = sum_u w_u p[u,l,S] (c[u,l] - t[u,l])^+`` over the distinct sets
    ("items" of size ``|S| s_l``).  (a) Let ``C`` be the items an optimal
    placement covers; by (ii) they are disjoint, so their sizes add up to at
    most ``sum_n Q_n``.  Fill the nodes in turn with the items of ``C``
    (next fit): when an item does not fit the current node, it becomes that
    node's *overflow* item and filling continues at the next node.  Each
    closed node has load plus overflow above its capacity, so the items run
    out before the nodes do, and every item of ``C`` is packed or overflow.
    The packed items, and the overflow items (at most one per node, each
    fitting by (iii)), are two placements ``O`` in which every item sits
    whole in one node's cache; the better one has value
    ``V(O) >= R(opt)/2``.  (b) ``O_{n_i}`` is a feasible cache of ``n_i``
    and adds at least the weight of its items not yet covered, so
    ``R(G_i) - R(G_{i-1}) >= alpha sum_{S in O_{n_i}, S not in G_{i-1}} W_S``.
    The items of ``O`` not counted this way are covered by ``G_N`` and
    distinct, so they weigh at most ``R(G_N)``; summing,
    ``R(G_N) >= alpha (V(O) - R(G_N))``, i.e.
    ``R(G_N) >= alpha/(1 + alpha) V(O) >= alpha/(2 (1 + alpha)) R(opt)``.
    Step (b) is the bin-by-bin greedy bound for the generalized assignment
    problem [7]_.  Conditions (ii) and (iii) cannot be dropped: the decoy
    family of Theorem 3 (b) breaks only (ii), and the instance of Theorem 3
    (a) with its two latencies made equal breaks only (iii) and still has
    ratio 0.  Whether a constant survives without (i) is open.

    Cost.  A fixed order makes ``N`` single-node solves.  ``greedy`` makes
    at most ``N (N + 1) / 2``, and a re-solve rebuilds only the tables the
    last commit changed (the table of node ``m`` and layer ``l`` when it
    lowered some ``tau[u,l,e]`` from above ``t[u,m,l]`` for a user ``u``
    reaching ``m``) and re-runs the node's DP; ``info`` counts both.  One
    solve costs ``O(sum_l r_l K log K + sum_{l enumerated} m_l 2^{m_l} +
    (Q_n / g) sum_l m_l)``, ``r_l`` routing rows of layer ``l``, ``g`` the gcd
    of the expert sizes; heuristic layers add ``O(c_l r_l K log(r_l K))``.

    References
    ----------
    .. [1] R. Bellman, *Dynamic Programming*, Princeton University Press, 1957
       (the knapsack recursion).
    .. [2] Q. Chen, X. Chen and K. Huang, "SlimCaching: Edge caching of
       mixture-of-experts for distributed inference", arXiv:2507.06567, 2025.
    .. [3] G. Qu, Z. Lin, F. Liu, X. Chen and K. Huang, "TrimCaching:
       Parameter-sharing AI model caching in wireless edge networks",
       ICDCS 2024, arXiv:2405.03990.
    .. [4] M. L. Fisher, G. L. Nemhauser and L. A. Wolsey, "An analysis of
       approximations for maximizing submodular set functions - II",
       Math. Program. Study 8:73-87, 1978.
    .. [5] G. L. Nemhauser, L. A. Wolsey and M. L. Fisher, "An analysis of
       approximations for maximizing submodular set functions - I",
       Math. Program. 14:265-294, 1978.
    .. [6] P. R. Goundan and A. S. Schulz, "Revisiting the greedy approach to
       submodular set function maximization", working paper, MIT, 2007.
    .. [7] R. Cohen, L. Katzir and D. Raz, "An efficient approximation for the
       generalized assignment problem", Inf. Process. Lett. 100(4):162-166, 2006.
    """
    t0 = time.perf_counter()
    reject_unknown(_name, unknown, ("order", "layer_solver", "max_enumerate", "eps"))
    _check_options(layer_solver, max_enumerate, eps)
    adaptive = isinstance(order, str) and order == "greedy"
    nodes = node_order(instance, order)
    params = {"order": order if isinstance(order, str) else list(order), "layer_solver": layer_solver,
              "max_enumerate": int(max_enumerate), "seed": seed}
    if eps is not None:
        params["eps"] = float(eps)
    ev = IncrementalEvaluator(instance)
    single = {"layer_solver": layer_solver, "max_enumerate": max_enumerate, "eps": eps}
    deadline = math.inf if time_limit is None else t0 + time_limit
    if adaptive:
        visited, stopped, work = _greedy_rounds(ev, single, deadline)
    else:
        visited, stopped, work = _fixed_rounds(ev, nodes, single, deadline)
    all_exact = all(v["exact"] for v in visited)
    placement = ev.placement()
    info = {"order": [v["node"] for v in visited] if adaptive else [instance.node_names[n] for n in nodes],
            "nodes": visited, "layer_methods": {v["node"]: v["layer_methods"] for v in visited},
            "exact_single_node": all_exact, **work}
    bound = None
    if stopped:
        status = Status.TIME_LIMIT
    elif instance.N == 1 and all_exact:
        status = Status.OPTIMAL
        bound = _latency(instance, placement)
    else:
        status = Status.HEURISTIC
    guarantee = None if stopped else _guarantee_text(GUARANTEES, instance, params)
    return make_result(instance, placement, algorithm=_name, status=status, runtime_s=time.perf_counter() - t0,
                       params=params, seed=seed, bound=bound, guarantee=guarantee, info=info)


successive.guarantees = GUARANTEES
