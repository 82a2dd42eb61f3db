"""Successive greedy decomposition and the single-node machinery.

The nodes are visited one at a time; for the current node ``n``, with every
other node's cache fixed, the *single-node subproblem* "which experts maximise
the extra reduction of ``T`` within ``Q_n``" is solved and committed
(``MODEL.md`` section 1).

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
of the tables over storage (:mod:`slimcaching.algorithms.maxconv`).

Per-layer tables.  Only the ``m_l`` *useful* experts (improvable in some row)
matter.  When ``m_l <= max_enumerate`` the table is exact: the prefix weights
are accumulated on bitmasks and ``g_l`` on all ``2^{m_l}`` subsets is their
subset-sum (zeta) transform, ``O(m_l 2^{m_l})`` vectorised, after which the
best subset of every size is one sort.  Otherwise a documented heuristic
builds a nested chain of sets (:func:`_heuristic_chain`).
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
from .maxconv import reject_unknown, solve_tables

__all__ = ["SingleNodeSolution", "LayerTable", "layer_table", "solve_single_node", "node_order",
           "successive"]

LAYER_SOLVERS = ("auto", "enumerate", "heuristic")
ORDERS = ("latency", "capacity", "given")
HEURISTIC_ROWS = 2048  # rows the chain heuristic looks at per step (values stay exact)
ENUMERATE_HARD_LIMIT = 22  # 2^22 subsets x 8 bytes = 32 MiB per table: the most "enumerate" accepts


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


@dataclass
class LayerTable:
    """``h_l(c)`` for ``c = 0..len(h)-1`` and a set achieving each entry.

    Attributes
    ----------
    h : float64 (cmax + 1,)   non-decreasing, ``h[0] = 0``.
    sets : list of int64 arrays, ``sets[c]`` has at most ``c`` expert ids.
    method : str              ``"enumerate"`` or ``"heuristic"``.
    useful : int              ``m_l``.
    """

    h: np.ndarray
    sets: list[np.ndarray]
    method: str
    useful: int


# ------------------------------------------------------------ row data
def _rows_by_layer(instance: Instance) -> list[np.ndarray]:
    v = instance.__dict__.get("_rows_by_layer")
    if v is None:
        order = np.argsort(instance.set_layer, kind="stable")
        bounds = np.searchsorted(instance.set_layer[order], np.arange(instance.L + 1))
        v = [order[bounds[l]:bounds[l + 1]] for l in range(instance.L)]
        object.__setattr__(instance, "_rows_by_layer", v)
    return v


def _prefix_data(instance: Instance, tau0: np.ndarray, n: int, l: int):
    """Rows of layer ``l`` with an improvable member, members sorted by decreasing ``tau``.

    Returns ``members int64 (r, K)``, ``imp bool (r, K)`` (improvable, a prefix
    of each row after sorting), ``vals float64 (r, K+1)`` (``v_1..v_k`` then
    ``t[u,n,l]`` repeated) and ``coef (r,)``.
    """
    rows = _rows_by_layer(instance)[l]
    M = instance.set_experts[rows]
    u = instance.set_user[rows]
    tn = instance.latency[u, n, l]
    valid = M >= 0
    tv = np.where(valid, tau0[u[:, None], l, np.maximum(M, 0)], -np.inf)
    imp = valid & (tv > tn[:, None])
    keep = imp.any(axis=1)
    M, tv, imp, tn, rows = M[keep], tv[keep], imp[keep], tn[keep], rows[keep]
    order = np.argsort(np.where(imp, -tv, np.inf), axis=1, kind="stable")
    v = np.take_along_axis(np.where(imp, tv, tn[:, None]), order, axis=1)
    M = np.take_along_axis(M, order, axis=1)
    imp = np.take_along_axis(imp, order, axis=1)
    vals = np.concatenate([v, tn[:, None]], axis=1)
    return M, imp, vals, instance.coef[rows]


def layer_table(instance: Instance, tau0: np.ndarray, n: int, l: int, *, cmax: int,
                layer_solver: str = "auto", max_enumerate: int = 16) -> LayerTable:
    """The table ``h_l(c)``, ``c = 0..min(cmax, m_l)``, for node ``n`` given latencies ``tau0``.

    Parameters
    ----------
    instance : Instance
    tau0 : float64 (U, L, Emax)
        Serving latencies of the other nodes' caches (node ``n`` empty).
    n, l : int
    cmax : int
        Largest count of interest (``Q_n // s_l``).
    layer_solver : {"auto", "enumerate", "heuristic"}
    max_enumerate : int
        ``auto`` enumerates when ``m_l <= max_enumerate``.
    """
    M, imp, vals, coef = _prefix_data(instance, tau0, n, l)
    useful = np.unique(M[imp])
    m = len(useful)
    cmax = int(min(cmax, m))
    if cmax <= 0:
        return LayerTable(np.zeros(1), [np.zeros(0, dtype=np.int64)],
                          "heuristic" if layer_solver == "heuristic" else "enumerate", m)
    enumerate_ = (layer_solver == "enumerate") or (layer_solver == "auto" and m <= max_enumerate)
    if enumerate_ and m > ENUMERATE_HARD_LIMIT:
        raise InputError("--layer-solver", ("", f"layer {l} has {m} useful experts at node {n}; "
                                                f"'enumerate' handles at most {ENUMERATE_HARD_LIMIT}"))
    loc = np.searchsorted(useful, np.where(imp, M, useful[0]))
    dw = coef[:, None] * (vals[:, :-1] - vals[:, 1:])      # (r, K), 0 past the improvable prefix
    if enumerate_:
        return _enumerate_table(loc, imp, dw, useful, cmax)
    return _heuristic_chain(loc, imp, vals, coef, useful, cmax)


def _enumerate_table(loc, imp, dw, useful, cmax) -> LayerTable:
    """Exact ``h_l`` by the subset-sum transform over all ``2^m`` subsets."""
    m = len(useful)
    bits = np.where(imp, np.left_shift(np.int64(1), loc), 0)
    prefix = np.bitwise_or.accumulate(bits, axis=1)
    g = np.bincount(prefix[imp], weights=dw[imp], minlength=1 << m)
    for j in range(m):                                    # zeta transform: g(A) = sum_{P subset A} W_P
        v = g.reshape(-1, 2, 1 << j)
        v[:, 1, :] += v[:, 0, :]
    pc = np.bitwise_count(np.arange(1 << m, dtype=np.int64)).astype(np.int64)
    order = np.lexsort((-g, pc))
    first = order[np.searchsorted(pc[order], np.arange(cmax + 1))]
    h = np.maximum.accumulate(g[first])                  # monotone anyway (W_P >= 0); guards rounding
    sets = [useful[(int(a) >> np.arange(m)) & 1 == 1] for a in first]
    return LayerTable(h, sets, "enumerate", m)


def _heuristic_chain(loc, imp, vals, coef, useful, cmax, max_rows: int | None = None) -> LayerTable:
    """Nested chain of sets grown by whole missing prefix parts (heuristic ``h_l``).

    Starting from ``A = {}``, every row proposes the missing members of each of
    its prefixes ``{e_1..e_j}`` (cut just before the next missing member, so a
    proposal completes as much of the row as it pays for).  Proposals with
    the same missing set are pooled (their gains add); the pooled proposal with
    the best gain per added expert that still fits in ``cmax`` is added to
    ``A``.  This grows ``A`` by whole missing parts of co-activated sets, so a
    pair whose members are worthless alone is still found.

    The choices look only at the ``max_rows`` rows of largest potential
    ``w p (v_1 - t[u,n,l])``; the table entries are nevertheless the *exact*
    values ``g_l`` of the chain sets over all rows (one telescoped pass: the
    prefix ``{e_1..e_j}`` of a row is complete from the step at which its
    last member joins).  ``h(c)`` is the value of the largest chain set of
    size ``<= c``, a lower bound of the true ``h_l``.  Cost: at most ``cmax``
    steps of ``O(R K log(R K))``, ``R = min(r, max_rows)``, plus ``O(r K)``.
    """
    m = len(useful)
    max_rows = HEURISTIC_ROWS if max_rows is None else max_rows
    all_loc, all_imp, all_dw = loc, imp, coef[:, None] * (vals[:, :-1] - vals[:, 1:])
    if len(coef) > max_rows:
        top = np.argpartition(-(coef * (vals[:, 0] - vals[:, -1])), max_rows - 1)[:max_rows]
        loc, imp, vals, coef = loc[top], imp[top], vals[top], coef[top]
    rng = np.random.default_rng(0x5EED)                   # fixed Zobrist keys: deterministic pooling
    zob = rng.integers(1, np.iinfo(np.int64).max, size=m, dtype=np.int64)
    inA = np.zeros(m, dtype=bool)
    step_of = np.full(m, np.iinfo(np.int64).max // 2, dtype=np.int64)   # chain step adding each expert
    sizes = [0]
    r = len(coef)
    while sizes[-1] < cmax and r:
        missing = imp & ~inA[loc]
        live = missing.any(axis=1)
        if not live.all():
            loc, imp, vals, coef, missing = loc[live], imp[live], vals[live], coef[live], missing[live]
            r = len(coef)
            if r == 0:
                break
        cnt = np.cumsum(missing, axis=1)
        first = np.argmax(missing, axis=1)
        ends = np.concatenate([missing[:, 1:] | ~imp[:, 1:], np.ones((r, 1), bool)], axis=1)
        cand = imp & ends & (cnt >= 1) & (cnt <= cmax - sizes[-1])
        ri, ji = np.nonzero(cand)
        if len(ri) == 0:
            break
        gain = coef[ri] * (vals[ri, first[ri]] - vals[ri, ji + 1])
        key = np.bitwise_xor.accumulate(np.where(missing, zob[loc], 0), axis=1)[ri, ji]
        uk, inv = np.unique(key, return_inverse=True)
        pooled = np.bincount(inv, weights=gain, minlength=len(uk))
        cost = np.zeros(len(uk))
        cost[inv] = cnt[ri, ji]
        best = int(np.argmax(pooled / cost))
        if pooled[best] <= 0:
            break
        k = int(np.argmax(inv == best))
        row, j = int(ri[k]), int(ji[k])
        new = loc[row, : j + 1][missing[row, : j + 1]]
        inA[new] = True
        step_of[new] = len(sizes)
        sizes.append(sizes[-1] + len(new))
    # exact values of the chain sets over all rows: prefix j of a row completes at the
    # step its slowest member joins; g(step t) = sum of prefix weights completed by t
    done_at = np.maximum.accumulate(np.where(all_imp, step_of[all_loc], 0), axis=1)
    ok = all_imp & (done_at < len(sizes))
    values = np.cumsum(np.bincount(done_at[ok], weights=all_dw[ok], minlength=len(sizes)))
    idx = np.searchsorted(np.asarray(sizes), np.arange(cmax + 1), side="right") - 1
    h = np.maximum.accumulate(values[idx])
    order = np.argsort(step_of, kind="stable")
    sets = [useful[order[: sizes[i]]] for i in idx]
    return LayerTable(h, sets, "heuristic", m)


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
                      exclude_current: bool = True) -> SingleNodeSolution:
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

    Returns
    -------
    SingleNodeSolution

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
    tables = [layer_table(inst, tau0, n, l, cmax=capacity // int(sizes[l]), layer_solver=layer_solver,
                          max_enumerate=max_enumerate) for l in range(inst.L)]
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


def _one_node_exact_tables(inst: Instance, params: dict) -> bool:
    if inst.N != 1 or params.get("layer_solver", "auto") == "heuristic":
        return False
    return int(inst.experts.max(initial=0)) <= int(params.get("max_enumerate", 16))


def successive(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
               order: str | Sequence = "latency", layer_solver: str = "auto", max_enumerate: int = 16,
               eps: float | None = None, _name: str = "successive", **unknown) -> Result:
    """Successive greedy decomposition over nodes with an exact DP per node.

    Problem: minimise ``T(x)`` subject to ``sum_{l,e} s_l x[n,l,e] <= Q_n``
    (``MODEL.md`` section 1).  Nodes are visited in ``order``; each solves the
    single-node subproblem (:func:`solve_single_node`) with the earlier nodes'
    caches fixed and later nodes empty, and commits its cache.

    Parameters
    ----------
    instance : Instance
    seed : int, optional
        Unused (the method is deterministic); recorded.
    time_limit : float, optional
        Seconds, checked between nodes; on expiry the remaining nodes stay
        empty and the status is ``time_limit``.
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
    for n in nodes:
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            stopped = True
            break
        sol = solve_single_node(ev, n, layer_solver=layer_solver, max_enumerate=max_enumerate, eps=eps)
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
        applies=lambda inst, params: _one_node_exact_tables(inst, params) and params.get("eps") is None,
    ),
)
