"""Successive greedy decomposition and the single-node machinery.

The nodes are visited one at a time; for the current node ``n``, with every
other node's cache fixed, the *single-node subproblem* "which experts maximise
the extra reduction of ``T`` within ``Q_n``" is solved and committed
(``docs/model.md`` section 1).

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
matter.  When ``m_l <= max_enumerate`` the table is exact: the prefix weights
are accumulated on bitmasks and ``g_l`` on all ``2^{m_l}`` subsets is their
subset-sum (zeta) transform, ``O(m_l 2^{m_l})`` vectorised, after which the
best subset of every size is one sort.  Otherwise a documented heuristic
builds a nested chain of sets (:func:`slimcaching.algorithms.knapsack._heuristic_chain`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance
from ..objective import IncrementalEvaluator, latency as _latency, tau as _tau
from ..result import Guarantee, Result, Status, make_result
from .common import reject_unknown
from .knapsack import ENUMERATE_HARD_LIMIT, LayerTable, layer_table, one_node_exact_tables, solve_tables

__all__ = ["SingleNodeSolution", "LayerTable", "layer_table", "solve_single_node", "node_order",
           "successive"]

LAYER_SOLVERS = ("auto", "enumerate", "heuristic")
ORDERS = ("latency", "capacity", "given")


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
        ``"enumerate"`` or ``"heuristic"`` per layer.
    exact : bool
        Every layer enumerated and the DP exact: ``value`` is the optimum of
        the single-node subproblem.
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
        Per-layer table method; ``auto`` enumerates layers with at most
        ``max_enumerate`` useful experts.
    max_enumerate : int
    eps : float, optional
        ``None``: exact DP over layers; ``0 < eps < 1``: approximate (max,+)
        convolution with value ``>= (1 - eps)`` times the exact DP value.
    exclude_current : bool
    deadline : float, optional
        A ``time.perf_counter()`` value; checked before each layer's table.

    Returns
    -------
    SingleNodeSolution or None
        ``None`` when the deadline passed before the tables were complete
        (nothing is chosen for the node).

    Notes
    -----
    Cost: one ``tau`` recomputation when node ``n`` holds experts, the tables
    (``O(r_l K log K)`` per layer plus ``O(m_l 2^{m_l})`` when enumerated, or
    the heuristic chain), and the DP over ``Q / g`` storage units, ``g`` the
    gcd of the sizes (or the approximate DP, independent of ``Q``).
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
    sizes = inst.expert_size
    tables = []
    for l in range(inst.L):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        tables.append(layer_table(inst, tau0, n, l, cmax=capacity // int(sizes[l]), layer_solver=layer_solver,
                                  max_enumerate=max_enumerate))
    active = [l for l in range(inst.L) if len(tables[l].h) > 1 and tables[l].h[-1] > 0]
    g = math.gcd(*(int(sizes[l]) for l in active)) if active else 1
    w = [int(sizes[l]) // g for l in active]
    sol = solve_tables(w, [tables[l].h for l in active], capacity // g, eps)
    elements = []
    for l, c in zip(active, sol.counts):
        for e in tables[l].sets[int(c)]:
            elements.append((n, l, int(e)))
    methods = [t.method for t in tables]
    exact = all(mth == "enumerate" for mth in methods) and sol.method in ("exact", "concave")
    return SingleNodeSolution(
        elements=np.asarray(elements, dtype=np.int64).reshape(-1, 3), value=float(sol.value),
        layer_methods=methods, exact=exact,
        info={"useful": [t.useful for t in tables], "dp": sol.method, "states": sol.info.get("states"),
              "units": g, "capacity": capacity},
    )


# ------------------------------------------------------------ the algorithm
def node_order(instance: Instance, order: str | Sequence = "latency") -> list[int]:
    """Visiting order of the nodes.

    ``"latency"``: weighted mean latency ``sum_u w_u mean_l t[u,n,l]`` over the
    users reaching ``n`` (normalised by their weight), ascending; nodes nobody
    reaches last.  ``"capacity"``: ``Q_n`` descending.  ``"given"``: as listed.
    A sequence of node names or indices gives the order explicitly (a
    permutation of all nodes).  Ties keep the listed order.
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


def successive(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
               order: str | Sequence = "latency", layer_solver: str = "auto", max_enumerate: int = 16,
               eps: float | None = None, _name: str = "successive", **unknown) -> Result:
    """Successive greedy decomposition over nodes with an exact DP per node.

    Problem: minimise ``T(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``
    (``docs/model.md`` section 1).  Nodes are visited in ``order``; each solves the
    single-node subproblem (:func:`solve_single_node`) with the earlier nodes'
    caches fixed and later nodes empty, and commits its cache.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Unused (the method is deterministic); recorded.
    time_limit : float, optional
        Seconds, checked before every node and every layer table; on expiry
        the node being solved and the remaining nodes stay empty and the
        status is ``time_limit``.
    order : {"latency", "capacity", "given"} or sequence of node names / indices
        Node visiting order (:func:`node_order`).
    layer_solver : {"auto", "enumerate", "heuristic"}
        Per-layer tables: exact enumeration of subsets, or the chain heuristic.
    max_enumerate : int
        ``auto`` enumerates layers with at most this many useful experts (<= 22).
    eps : float, optional
        Approximate convolution (see :func:`~slimcaching.algorithms.maxconv.maxconv`).

    Returns
    -------
    Result
        ``info["nodes"]``: per visited node its per-layer methods, useful
        experts, DP method and predicted value; ``info["layer_methods"]``: the
        method per ``(node, layer)``.

    Notes
    -----
    Guarantee.  With a single node (``N = 1``) and every layer enumerated,
    the tables are exact and the DP over layers and storage is exact, so

    .. math:: R(\\text{successive}) = R(\\text{opt}),

    and the status is ``optimal``.  With ``N >= 2`` the decomposition is a
    heuristic (no bound is claimed: later nodes cannot undo earlier choices).

    Complexity per node: ``O(sum_l r_l K log K + sum_{l enumerated} m_l 2^{m_l}
    + (Q_n / g) sum_l m_l)``, ``r_l`` routing rows of layer ``l``, ``g`` the gcd
    of the expert sizes; heuristic layers add ``O(c_l r_l K log(r_l K))``.

    References
    ----------
    .. [1] R. Bellman, *Dynamic Programming*, Princeton University Press, 1957
       (the knapsack recursion).
    .. [2] Q. Chen, X. Chen and K. Huang, "SlimCaching: Edge caching of
       mixture-of-experts for distributed inference", arXiv:2507.06567, 2025.
    """
    t0 = time.perf_counter()
    reject_unknown(_name, unknown, ("order", "layer_solver", "max_enumerate", "eps"))
    _check_options(layer_solver, max_enumerate, eps)
    nodes = node_order(instance, order)
    params = {"order": order if isinstance(order, str) else list(order), "layer_solver": layer_solver,
              "max_enumerate": int(max_enumerate), "seed": seed}
    if eps is not None:
        params["eps"] = float(eps)
    ev = IncrementalEvaluator(instance)
    visited, stopped, all_exact = [], False, True
    deadline = None if time_limit is None else t0 + time_limit
    for n in nodes:
        sol = None
        if deadline is None or time.perf_counter() <= deadline:
            sol = solve_single_node(ev, n, layer_solver=layer_solver, max_enumerate=max_enumerate, eps=eps,
                                    deadline=deadline)
        if sol is None:
            stopped = True
            break
        if len(sol.elements):
            ev.apply(add=[tuple(int(v) for v in row) for row in sol.elements])
        all_exact &= sol.exact
        visited.append({"node": instance.node_names[n], "value": sol.value, "layer_methods": sol.layer_methods,
                        "useful": sol.info["useful"], "dp": sol.info["dp"], "units": sol.info["units"],
                        "cached": int(len(sol.elements))})
    placement = ev.placement()
    info = {"order": [instance.node_names[n] for n in nodes], "nodes": visited,
            "layer_methods": {v["node"]: v["layer_methods"] for v in visited}, "exact_single_node": all_exact}
    bound, guarantee = None, None
    if stopped:
        status = Status.TIME_LIMIT
    elif instance.N == 1 and all_exact:
        status = Status.OPTIMAL
        bound = _latency(instance, placement)
        guarantee = f"R({_name}) = R(opt): one node, every layer enumerated, exact DP"
    else:
        status = Status.HEURISTIC
        if instance.N == 1 and eps is not None and all(m == "enumerate" for v in visited
                                                       for m in v["layer_methods"]):
            guarantee = f"R(maxconv) >= {1 - eps:g} R(opt): one node, every layer enumerated, eps = {eps:g}"
    return make_result(instance, placement, algorithm=_name, status=status, runtime_s=time.perf_counter() - t0,
                       params=params, seed=seed, bound=bound, guarantee=guarantee, info=info)


successive.guarantees = (
    Guarantee(
        ratio=1.0,
        regime="one node, every layer enumerated exactly (E_l <= max_enumerate), exact DP (eps = None)",
        reference="exact per-layer subset enumeration + knapsack DP over layers (Bellman 1957)",
        applies=lambda inst, params: one_node_exact_tables(inst, params) and params.get("eps") is None,
    ),
)
