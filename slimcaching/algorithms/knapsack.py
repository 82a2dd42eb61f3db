"""Per-node value tables and their (max,+) merges: the knapsack inside the successive decomposition.

The single-node subproblem of the successive decomposition (``docs/model.md``
section 1, :mod:`slimcaching.algorithms.successive`) ends in a
*multiple-choice knapsack* over layers: layer ``l`` offers the options
"cache ``c`` experts", ``c = 0..m_l``, of weight ``c * w_l`` storage units and
value ``h_l(c)`` (non-negative, ``h_l(0) = 0``); pick one option per layer,
total weight ``<= Q``, maximise the total value.  The recursion

.. math::

    F_l(q) = \\max_{c:\\ c w_l \\le q} F_{l-1}(q - c w_l) + h_l(c)

is a (max,+) convolution of ``F_{l-1}`` with the table of layer ``l``.

This module builds the tables and merges them:

* :func:`layer_table` -- ``h_l`` of one node and layer, exact by subset
  enumeration up to ``max_enumerate`` useful experts, else the documented
  chain heuristic (:func:`_heuristic_chain`);
* :func:`exact_tables_dp` -- the exact DP over storage, ``O(Q sum_l m_l)``;
* :func:`approx_tables_dp` -- value-scaled DP, total value ``>= (1 - eps)``
  times the exact one, time ``O(L_+^2 / eps * sum_l m_l)``, independent of ``Q``;
* :func:`concave_tables_merge` -- exact greedy merge of increments when every
  table is concave and every layer has the same weight.

``successive`` uses the exact DP, ``maxconv`` the approximate one.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance
from ..objective import resolve_kernel, set_members

__all__ = ["LayerTable", "layer_table", "TablesSolution", "exact_tables_dp", "approx_tables_dp",
           "concave_tables_merge", "is_concave", "solve_tables", "one_node_exact_tables",
           "HEURISTIC_ROWS", "ENUMERATE_HARD_LIMIT"]

HEURISTIC_ROWS = 2048  # rows the chain heuristic looks at per step (values stay exact)
ENUMERATE_HARD_LIMIT = 22  # 2^22 subsets x 8 bytes = 32 MiB per table: the most "enumerate" accepts


# ------------------------------------------------------------ per-layer tables
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
    return _heuristic_chain(loc, imp, vals, coef, useful, cmax, kernel=resolve_kernel("auto", set_members(instance)))


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


def _heuristic_chain(loc, imp, vals, coef, useful, cmax, max_rows: int | None = None,
                     kernel: str = "auto") -> LayerTable:
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

    ``kernel`` (``"auto"``: ``SLIMCACHING_KERNEL``, see
    :func:`~slimcaching.objective.resolve_kernel`): ``"numpy"`` recomputes
    every row's proposals and sorts their keys at every step
    (:func:`_chain_steps`); ``"numba"`` keeps the proposals and recomputes
    only the rows holding an expert that just joined, ``O(R K)`` plain loop
    iterations per step (:func:`_compile_chain`).  Both make the same
    choices, bit for bit (``tests/test_knapsack.py``).
    """
    m = len(useful)
    max_rows = HEURISTIC_ROWS if max_rows is None else max_rows
    all_loc, all_imp, all_dw = loc, imp, coef[:, None] * (vals[:, :-1] - vals[:, 1:])
    if len(coef) > max_rows:
        top = np.argpartition(-(coef * (vals[:, 0] - vals[:, -1])), max_rows - 1)[:max_rows]
        loc, imp, vals, coef = loc[top], imp[top], vals[top], coef[top]
    rng = np.random.default_rng(0x5EED)                   # fixed Zobrist keys: deterministic pooling
    zob = rng.integers(1, np.iinfo(np.int64).max, size=m, dtype=np.int64)
    step_of = np.full(m, np.iinfo(np.int64).max // 2, dtype=np.int64)   # chain step adding each expert
    if resolve_kernel(kernel) == "numba":
        members = loc[imp]
        by_expert = np.argsort(members, kind="stable")
        rows_of = np.repeat(np.arange(len(coef)), imp.sum(axis=1))[by_expert]   # rows holding each expert
        starts = np.searchsorted(members[by_expert], np.arange(m + 1))
        out = np.zeros(m + 2, dtype=np.int64)
        k = _chain_kernel()(np.ascontiguousarray(loc, dtype=np.int64), np.ascontiguousarray(imp),
                            np.ascontiguousarray(vals, dtype=np.float64), np.ascontiguousarray(coef, dtype=np.float64),
                            zob, int(cmax), rows_of.astype(np.int64), starts.astype(np.int64), step_of, out)
        sizes = [int(v) for v in out[:k]]
    else:
        sizes = _chain_steps(loc, imp, vals, coef, zob, cmax, step_of)
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



def _chain_steps(loc, imp, vals, coef, zob, cmax, step_of) -> list[int]:
    """The steps of :func:`_heuristic_chain` in numpy: every step recomputes every row's proposals
    and pools them by sorting their keys.  Sets ``step_of`` and returns the chain's sizes."""
    inA = np.zeros(len(zob), dtype=bool)
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
    return sizes


# ------------------------------------------------------------ the chain, compiled
_CHAIN: dict[str, object] = {}
_CHAIN_LOCK = threading.Lock()


def _chain_kernel(name: str = "chain"):
    """A compiled kernel of this module (``"chain"``, ``"dp_layer"``; :func:`_compile_chain`),
    or ``None`` when numba is not installed."""
    if "kernels" not in _CHAIN:
        with _CHAIN_LOCK:
            if "kernels" not in _CHAIN:
                try:
                    import numba
                except ImportError:
                    _CHAIN["kernels"] = None
                else:
                    _CHAIN["kernels"] = _compile_chain(numba)
    return None if _CHAIN["kernels"] is None else _CHAIN["kernels"][name]


def _compile_chain(numba):
    """The steps of :func:`_heuristic_chain` with incremental bookkeeping, compiled.

    The same choices as the numpy steps, bit for bit: every row keeps its
    proposals (``cid``: an id per ``(row, j)``, 0 for none; gains and counts
    computed with the numpy steps' operations) and only the rows containing
    an expert that just joined are recomputed; the pooled gains are summed
    per id in row-major order from 0.0 (the order and start of the numpy
    steps' ``bincount``); the best ratio wins, ties to the smallest key (the
    first of numpy's sorted unique keys).  A step costs ``O(R K + ids)``
    simple loop iterations instead of a sort.
    """
    from numba import types
    from numba.typed import Dict

    @numba.njit(cache=True, nogil=True)
    def chain(loc, imp, vals, coef, zob, cmax, rows_of, starts, step_of, sizes):  # pragma: no cover - compiled
        R, K = imp.shape
        m = zob.shape[0]
        inA = np.zeros(m, dtype=np.bool_)
        missing = imp.copy()
        cid = np.zeros((R, K), dtype=np.int64)
        ccnt = np.zeros((R, K), dtype=np.int64)
        cgain = np.zeros((R, K), dtype=np.float64)
        keys = np.zeros(1024, dtype=np.int64)
        cost = np.zeros(1024, dtype=np.float64)
        n_ids = 1
        index = Dict.empty(key_type=types.int64, value_type=types.int64)
        todo = np.arange(R)
        n_todo = R
        live = np.arange(R)
        n_live = R
        act = np.zeros(R * K + 1, dtype=np.int64)        # ids with a proposal in this step
        pooled = np.zeros(1024)
        count = np.zeros(1024, dtype=np.int64)
        stamp = np.full(R, -1, dtype=np.int64)
        sizes[0] = 0
        n_sizes = 1
        while True:
            for t in range(n_todo):                       # the proposals of the changed rows
                r = todo[t]
                c = 0
                first = 0
                x = np.int64(0)
                for j in range(K):
                    if missing[r, j]:
                        if c == 0:
                            first = j
                        c += 1
                        x ^= zob[loc[r, j]]
                    end = True if j == K - 1 else (missing[r, j + 1] or not imp[r, j + 1])
                    if imp[r, j] and end and c >= 1:
                        ccnt[r, j] = c
                        cgain[r, j] = coef[r] * (vals[r, first] - vals[r, j + 1])
                        i = index.get(x, -1)
                        if i < 0:
                            if n_ids == keys.shape[0]:
                                k2 = np.zeros(2 * n_ids, dtype=np.int64)
                                c2 = np.zeros(2 * n_ids, dtype=np.float64)
                                k2[:n_ids] = keys[:n_ids]
                                c2[:n_ids] = cost[:n_ids]
                                keys, cost = k2, c2
                            i = n_ids
                            index[x] = i
                            keys[i] = x
                            cost[i] = c
                            n_ids += 1
                        cid[r, j] = i
                    else:
                        cid[r, j] = 0
            if sizes[n_sizes - 1] >= cmax:
                break
            room = cmax - sizes[n_sizes - 1]
            if pooled.shape[0] < n_ids:
                pooled = np.zeros(keys.shape[0])
                count = np.zeros(keys.shape[0], dtype=np.int64)
            n_act = 0
            n_kept = 0
            for t in range(n_live):                       # rows with a proposal, in row order
                r = live[t]
                if not missing[r].any():                  # complete: no proposal now or later
                    continue
                live[n_kept] = r
                n_kept += 1
                for j in range(K):
                    i = cid[r, j]
                    if i > 0 and ccnt[r, j] <= room:
                        if count[i] == 0:
                            act[n_act] = i
                            n_act += 1
                        pooled[i] += cgain[r, j]
                        count[i] += 1
            best = -1
            best_q = 0.0
            for t in range(n_act):
                i = act[t]
                q = pooled[i] / cost[i]
                if best < 0 or q > best_q or (q == best_q and keys[i] < keys[best]):
                    best = i
                    best_q = q
            best_pooled = pooled[best] if best >= 0 else 0.0
            for t in range(n_act):                        # back to zero for the next step
                pooled[act[t]] = 0.0
                count[act[t]] = 0
            if best < 0 or best_pooled <= 0:
                break
            n_live = n_kept
            row = -1
            jb = -1
            for t in range(n_live):
                r = live[t]
                for j in range(K):
                    if cid[r, j] == best:
                        row = r
                        jb = j
                        break
                if row >= 0:
                    break
            n_new = 0
            n_todo = 0
            for j in range(jb + 1):
                if missing[row, j]:
                    e = loc[row, j]
                    inA[e] = True
                    step_of[e] = n_sizes
                    n_new += 1
                    for p in range(starts[e], starts[e + 1]):
                        rr = rows_of[p]
                        if stamp[rr] != n_sizes:
                            stamp[rr] = n_sizes
                            todo[n_todo] = rr
                            n_todo += 1
            sizes[n_sizes] = sizes[n_sizes - 1] + n_new
            n_sizes += 1
            for t in range(n_todo):
                rr = todo[t]
                for j in range(K):
                    missing[rr, j] = imp[rr, j] and not inA[loc[rr, j]]
        return n_sizes

    @numba.njit(cache=True, nogil=True)
    def dp_layer(F, h, w, ch):  # pragma: no cover - compiled
        """One layer of :func:`exact_tables_dp`: the numpy loop's comparisons, element by element."""
        Q = F.shape[0] - 1
        G = F.copy()
        for c in range(1, h.shape[0]):
            if h[c] <= h[c - 1] and c > 1:
                continue
            s = c * w
            for q in range(s, Q + 1):
                cand = F[q - s] + h[c]
                if cand > G[q]:
                    G[q] = cand
                    ch[q] = c
        return G

    return {"chain": chain, "dp_layer": dp_layer}


# ------------------------------------------------------------ merges over layers
@dataclass
class TablesSolution:
    """A choice of one option per layer.

    Attributes
    ----------
    counts : int64 (L,)   chosen ``c_l``.
    value : float         ``sum_l h_l(c_l)``.
    weight : int          ``sum_l c_l w_l``.
    method : str          ``"exact"``, ``"approx"`` or ``"concave"``.
    info : dict           sizes of the DP (states, scale ``K``, ...).
    """

    counts: np.ndarray
    value: float
    weight: int
    method: str
    info: dict = field(default_factory=dict)


def _prepare(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int):
    w = np.asarray(weights, dtype=np.int64)
    if len(w) != len(tables):
        raise ValueError("weights and tables must have the same length")
    if np.any(w <= 0):
        raise ValueError("weights must be positive integers")
    if Q < 0:
        raise ValueError("capacity must be non-negative")
    hs = []
    for l, h in enumerate(tables):
        h = np.asarray(h, dtype=np.float64)
        cmax = min(len(h) - 1, int(Q // w[l]))
        hs.append(h[: cmax + 1] if len(h) else np.zeros(1))
    return w, hs


def _finish(w: np.ndarray, hs: list[np.ndarray], counts: np.ndarray, method: str, info: dict) -> TablesSolution:
    value = float(sum(hs[l][c] for l, c in enumerate(counts)))
    return TablesSolution(counts=counts, value=value, weight=int((counts * w).sum()), method=method, info=info)


def exact_tables_dp(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int,
                    deadline: float | None = None, kernel: str = "auto") -> TablesSolution | None:
    """Exact (max,+) DP over storage ``q = 0..Q``.

    Parameters
    ----------
    weights : int (L,)
        ``w_l > 0``, storage units of one layer-``l`` expert.
    tables : sequence of float64 (m_l + 1,)
        ``h_l(c)``, with ``h_l(0) = 0``.
    Q : int
        Capacity in the same units.

    deadline : float, optional
        A ``time.perf_counter()`` value, checked before each layer (one layer
        costs ``O(Q m_l)``; with ``Q`` in the millions, as on mixed-precision
        instances where the sizes' gcd is 1 KiB, the whole DP can take minutes).

    Returns
    -------
    TablesSolution or None
        An optimal choice (ties broken towards fewer experts); ``None`` when
        the deadline passed first.

    Notes
    -----
    ``F`` is kept as "best value with storage at most ``q``" (``F_0 = 0``), so
    it is non-decreasing in ``q``; each layer is ``m_l`` shifted maxima over a
    length-``Q + 1`` vector, ``O(Q sum_l m_l)`` time, and the argmax per
    ``(l, q)`` (``int16``) is kept for the backtrack, ``O(L Q)`` memory.
    ``kernel="numba"`` (``"auto"``: ``SLIMCACHING_KERNEL``) runs each layer as
    compiled loops with the same comparisons, hence the same choices.
    """
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    F = np.zeros(Q + 1)
    choice = np.zeros((L, Q + 1), dtype=np.int16)
    compiled = _chain_kernel("dp_layer") if resolve_kernel(kernel) == "numba" else None
    for l in range(L):
        if deadline is not None and time.perf_counter() > deadline:
            return None
        h = hs[l]
        if len(h) <= 1 or h[-1] <= 0:
            continue
        if compiled is not None:
            F = compiled(F, np.asarray(h, dtype=np.float64), int(w[l]), choice[l])
            continue
        G = F.copy()
        ch = choice[l]
        for c in range(1, len(h)):
            if h[c] <= h[c - 1] and c > 1:
                continue  # never better than c - 1 (monotone tables)
            s = int(c * w[l])
            cand = F[: Q + 1 - s] + h[c]
            better = cand > G[s:]
            if better.any():
                G[s:] = np.where(better, cand, G[s:])
                ch[s:][better] = c
        F = G
    counts = np.zeros(L, dtype=np.int64)
    q = Q
    for l in range(L - 1, -1, -1):
        c = int(choice[l, q])
        counts[l] = c
        q -= c * int(w[l])
    return _finish(w, hs, counts, "exact", {"states": Q + 1})


def approx_tables_dp(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int, eps: float) -> TablesSolution:
    """Approximate (max,+) convolution by value scaling.

    Returns a choice of value ``>= (1 - eps) * OPT``, where ``OPT`` is the
    value of :func:`exact_tables_dp` on the same input.

    Parameters
    ----------
    weights, tables, Q
        As in :func:`exact_tables_dp`.
    eps : float
        ``0 < eps < 1``.

    Notes
    -----
    Proof sketch.  Drop options with ``c w_l > Q``.  Let ``L_+`` be the number
    of layers with a positive option and ``V = max_{l,c} h_l(c)``; one option
    alone is feasible, so ``V <= OPT``.  Round ``r_l(c) = floor(h_l(c) / K)``
    with ``K = eps V / L_+``.  The DP over (layer, rounded value) stores the
    least weight reaching each rounded total *exactly*, which is exact for the
    rounded problem; let ``C`` be its best feasible choice and ``C*`` the
    exact optimum.  Then
    ``h(C) >= K r(C) >= K r(C*) >= h(C*) - L_+ K = OPT - eps V >= (1 - eps) OPT``,
    using ``h - K < K r <= h`` per layer.  The rounded totals are at most
    ``sum_l V / K = L_+^2 / eps``, so the time is
    ``O(L_+^2 / eps * sum_l m_l)`` and the memory ``O(L L_+^2 / eps)``:
    polynomial in ``L``, the table lengths and ``1/eps``, and independent of
    the magnitude of ``Q`` (weights are only added and compared).
    This is the classical knapsack FPTAS scaling [1]_ applied to the
    multiple-choice knapsack [2]_.

    References
    ----------
    .. [1] O. H. Ibarra and C. E. Kim, "Fast approximation algorithms for the
       knapsack and sum of subset problems", J. ACM 22(4), 1975.
    .. [2] H. Kellerer, U. Pferschy and D. Pisinger, *Knapsack Problems*,
       Springer, 2004, ch. 11 (multiple-choice knapsack).
    """
    if not 0 < eps < 1:
        raise InputError("--eps", ("", f"eps must satisfy 0 < eps < 1, got {eps!r}"))
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    active = [l for l in range(L) if len(hs[l]) > 1 and hs[l].max() > 0]
    if not active:
        return _finish(w, hs, np.zeros(L, dtype=np.int64), "approx", {"states": 0, "scale": None})
    V = max(float(hs[l].max()) for l in active)
    K = eps * V / len(active)
    BIG = np.iinfo(np.int64).max // 4
    R = 0
    Wmin = np.zeros(1, dtype=np.int64)
    choices: dict[int, np.ndarray] = {}
    for l in active:
        r = np.floor(hs[l] / K).astype(np.int64)
        r[0] = 0
        Rn = R + int(r.max())
        G = np.full(Rn + 1, BIG, dtype=np.int64)
        G[: R + 1] = Wmin
        ch = np.zeros(Rn + 1, dtype=np.int16)
        best_r = 0
        for c in range(1, len(r)):
            if r[c] <= best_r:
                continue  # same or lower rounded value at higher weight: dominated
            best_r = int(r[c])
            s = int(c * w[l])
            cand = np.where(Wmin < BIG, Wmin + s, BIG)
            tgt = G[r[c]: r[c] + R + 1]
            better = cand < tgt
            if better.any():
                tgt[better] = cand[better]
                ch[r[c]: r[c] + R + 1][better] = c
        Wmin, R = G, Rn
        choices[l] = ch
    feasible = np.nonzero(Wmin <= Q)[0]
    v = int(feasible.max())
    counts = np.zeros(L, dtype=np.int64)
    for l in reversed(active):
        c = int(choices[l][v])
        counts[l] = c
        v -= int(np.floor(hs[l][c] / K)) if c else 0
    _use_slack(w, hs, counts, Q)
    return _finish(w, hs, counts, "approx", {"states": R + 1, "scale": K, "eps": eps})


def _use_slack(w: np.ndarray, hs: list[np.ndarray], counts: np.ndarray, Q: int) -> None:
    """Raise counts in place, layer by layer, to the best option the remaining slack allows
    (never lowers the value; recovers what rounding gave away when storage is left over)."""
    slack = int(Q - (counts * w).sum())
    for l in range(len(w)):
        c = int(counts[l])
        top = min(len(hs[l]) - 1, c + slack // int(w[l]))
        if top > c:
            best = c + int(np.argmax(hs[l][c: top + 1]))
            if hs[l][best] > hs[l][c]:
                slack -= (best - c) * int(w[l])
                counts[l] = best


def is_concave(h: np.ndarray, tol: float = 1e-12) -> bool:
    """Whether ``h(c+1) - h(c)`` is non-increasing in ``c`` (within ``tol``)."""
    d = np.diff(np.asarray(h, dtype=float))
    return bool(np.all(np.diff(d) <= tol * max(1.0, float(np.abs(h).max(initial=0.0)))))


def concave_tables_merge(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int) -> TablesSolution:
    """Exact solution when all ``w_l`` are equal and every ``h_l`` is concave.

    With a common weight ``w`` the constraint is "at most ``floor(Q / w)``
    experts in total"; concavity makes each layer's increments non-increasing,
    so taking the ``floor(Q / w)`` largest positive increments over all layers
    (ties by layer, then count) takes a prefix in every layer and is optimal
    (exchange argument).  ``O(M log M)`` for ``M = sum_l m_l`` increments.
    """
    w, hs = _prepare(weights, tables, Q)
    L = len(w)
    if L and (np.any(w != w[0]) or not all(is_concave(h) for h in hs)):
        raise ValueError("concave_tables_merge needs equal weights and concave tables")
    counts = np.zeros(L, dtype=np.int64)
    if L == 0:
        return _finish(w, hs, counts, "concave", {})
    inc = [np.diff(h) for h in hs]
    lay = np.concatenate([np.full(len(d), l) for l, d in enumerate(inc)]) if inc else np.zeros(0, int)
    pos = np.concatenate([np.arange(len(d)) for d in inc]) if inc else np.zeros(0, int)
    val = np.concatenate(inc) if inc else np.zeros(0)
    order = np.lexsort((pos, lay, -val))
    take = order[: int(Q // w[0])]
    take = take[val[take] > 0]
    np.add.at(counts, lay[take], 1)
    return _finish(w, hs, counts, "concave", {"increments": int(len(val))})


def solve_tables(weights: Sequence[int], tables: Sequence[np.ndarray], Q: int, eps: float | None = None,
                 deadline: float | None = None, kernel: str = "auto") -> TablesSolution | None:
    """Pick the method: exact concave merge when it applies, else exact DP
    (``eps=None``) or the cheaper of the approximate and exact DP (``eps > 0``).
    ``None`` when the exact DP passed ``deadline`` (:func:`exact_tables_dp`).

    The exact DP is used under ``eps`` when its state count ``Q + 1`` is no
    larger than the approximate one's bound ``L_+^2 / eps``; both satisfy the
    ``(1 - eps)`` guarantee, the exact one trivially.  ``kernel``: the exact
    DP's (:func:`exact_tables_dp`).
    """
    w = np.asarray(weights, dtype=np.int64)
    hs = [np.asarray(h, dtype=float) for h in tables]
    if len(w) and np.all(w == w[0]) and all(is_concave(h) for h in hs):
        return concave_tables_merge(w, hs, Q)
    if eps is None:
        return exact_tables_dp(w, hs, Q, deadline, kernel)
    active = sum(1 for h in hs if len(h) > 1 and h.max() > 0)
    if Q + 1 <= active * active / eps:
        return exact_tables_dp(w, hs, Q, deadline, kernel)
    return approx_tables_dp(w, hs, Q, eps)



def one_node_exact_tables(inst: Instance, params: dict) -> bool:
    """One node, and every layer small enough to be enumerated under ``params``
    (the regime where the successive decomposition's tables are exact)."""
    if inst.N != 1 or params.get("layer_solver", "auto") == "heuristic":
        return False
    return int(inst.experts.max(initial=0)) <= int(params.get("max_enumerate", 16))
