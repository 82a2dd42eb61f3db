"""Exact layer latencies for every count vector at once, by subset weights: no MILP per vector.

:func:`~.enumeration.count_enumeration` needs ``g_l(k)``, the least latency
of layer ``l`` over the patterns that cache exactly ``k_n`` of its experts at
each node ``n``.  When a layer has few experts and few nodes that several
users reach, all of ``g_l`` follows from a scan of expert bitmasks.

**The layer latency as a function of bitmasks.**  Let ``M_n`` be the set of
layer-``l`` experts that node ``n`` caches.  For user ``u`` let
``theta_1 < ... < theta_m`` be the distinct latencies ``t[u,n,l] < c[u,l]`` of
the nodes it reaches, ``theta_{m+1} = c[u,l]``, and
``A_j = U{M_n : t[u,n,l] <= theta_j}`` the experts available at latency
``<= theta_j``.  An activated set ``S`` waits ``theta_J`` for the least
``J`` with ``S`` in ``A_J`` (``c[u,l]`` if none), and since the ``A_j`` grow
with ``j``, ``theta_J = c[u,l] - sum_{j<=m} (theta_{j+1} - theta_j) [S in A_j]``.
Summed with the routing probabilities,

.. math::

    T_{u,l}(M) = c[u,l] - \\sum_{j=1}^{m} (\\theta_{j+1} - \\theta_j)\\, W_u(A_j),\\qquad
    W_u(A) = \\sum_{S \\subseteq A} p[u,l,S],

and the layer's latency is ``sum_u w_u T_{u,l}(M)``.  ``W_u`` is a table
over the ``2^E`` subsets of the layer's experts (the subset-sum, or zeta,
transform of ``p``), so each evaluation is ``m`` table look-ups.

**Shared and private nodes.**  A node that exactly one user reaches below
the cloud latency (its own device) enters only that user's ``T_{u,l}``.  Give
each user at most one such *private* node ``p_u``; call the others with
something to cache *shared*.  For fixed shared masks the layer latency is a
sum of per-user terms, user ``u``'s depending on the shared masks and
``M_{p_u}`` only, so

.. math::

    g_l(k) = \\min_{M_{\\mathrm{sh}}:\\,|M_n| = k_n} \\sum_u w_u
        \\min_{M_{p_u}:\\,|M_{p_u}| = k_{p_u}} T_{u,l}(M_{\\mathrm{sh}}, M_{p_u}),

which :func:`count_table` evaluates exactly by scanning every combination of
shared masks and, for each, every mask of each private node.  Masks range
over the node's useful experts (``support``) with at most ``hi_n`` of them,
the ranges of :func:`~.enumeration.count_vectors`; caching an element
outside the support changes no latency, so nothing below ``g_l`` is missed.
The scan costs ``prod_sh |masks_n| * (1 + sum_u |masks_{p_u}|)`` evaluations
(:func:`table_work`), which is small exactly when the per-vector MILPs are
many: 8-expert layers with two shared nodes (the Mixtral ``5g-mec`` and L8
mixed-precision files) take about 2 s a layer.

**Top-1 layers.**  When every activated set of the layer has one expert,
``W_u(A) = sum_{e in A} p[u,l,{e}]`` and the layer latency is separable:
``sum_u w_u c[u,l] - sum_e gain_e(N_e)``, where ``N_e`` is the set of nodes
caching ``e`` and ``gain_e(N_e) = sum_u w_u p[u,l,{e}] (c[u,l] - min(c[u,l],
min_{n in N_e} t[u,n,l]))``.  Then ``g_l`` is a knapsack over experts with a
count vector as state: ``F_e(k) = min_{N_e} F_{e-1}(k - 1_{N_e}) - gain_e(N_e)``
over the node sets where ``e`` is useful, ``F_0 = 0`` at ``k = 0``, and
``g_l(k) = sum_u w_u c[u,l] + F_E(k)``.  This dynamic programme costs
``E * 2^N * prod_n (hi_n + 1)`` and needs no bitmask table, so it also
covers 16-expert layers (``mixed-llama-4-scout-wifi-jetson-L12``).

**Many shared nodes: a scan over node sets.**  With four shared nodes the
mask scan above is ``2^(4E)`` evaluations (4.3 billion for 8 experts).  Scan
instead, for each expert ``e``, the set ``N_e`` of nodes caching it.  Its
latency for user ``u`` is ``lambda_u(N_e) = min(c[u,l], min_{n in N_e}
t[u,n,l])``, and ``A_j = {e : lambda_u(N_e) <= theta_j}``, so the layer's
latency depends on the ``N_e`` only through these profiles.  Call ``N_e``
*redundant* when some node of it is, for every user, no faster than the
rest of ``N_e`` (or the cloud): dropping it changes no latency and lowers a
count.  Let ``h(k)`` be the least latency over patterns of irredundant sets
with counts exactly ``k``, and ``G(k) = min_{k' <= k} g_l(k')``.  Every
pattern with counts ``k'`` becomes, by dropping redundant nodes one at a
time, an irredundant one with counts ``k'' <= k'`` and the same latency, so
``G(k) = min_{k'' <= k} h(k'')``.  The table keeps ``h(k)`` where
``h(k) < G(k - 1_n)`` for every ``n`` with ``k_n > 0``; there ``h(k) =
G(k) = g_l(k)`` (``G(k) <= g_l(k) <= h(k)``), with an optimal pattern of
counts exactly ``k``.  Every other ``k`` is ``inf``: a vector one count
below has a latency at most ``G(k)``, and so a pattern no worse that uses
less storage.  For the outer knapsack of :mod:`.enumeration` that is
exact: any placement can replace such a layer's pattern by one of a kept
vector at most as large, with the same or lower latency and no more
storage, so the optimum over kept vectors is ``T(opt)`` and its dual bound
is valid (``CountTable.dominance``).

The sets of one expert are few (``1 + 4 + ...``: nine per expert on the
``wifi-jetson`` Mixtral file, ``9^8 = 43`` million patterns a layer), and
they are scanned by meeting in the middle: the experts are split in two
halves, each half's combinations are listed with their counts and, per
term ``(u, j)``, their share of ``A_j`` as a bitmask; then ``sum_j
(theta_{j+1} - theta_j) w_u W_u(A_j)`` over every pair of halves is one
matrix product (one-hot rows of the high half's masks against the low
half's columns of ``W``), grouped by the two halves' count vectors.  The
kept values are recomputed from each optimal pattern in a fixed order, so
they do not depend on the matrix product's summation order.  Measured: the
32 layers of ``mixed-mixtral-8x7b-wifi-jetson`` in 10 s (20 s of CPU on 2
cores), where one MILP per vector took 0.25 s for each of about 32 000
vectors.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import numpy as np

from ..instances.model import Instance
from .assignment import support

__all__ = ["CountTable", "count_table", "table_work", "SCANS", "TABLE_WORK", "PROFILE_MEMORY", "MAX_NODE_SETS",
           "MAX_TABLE_EXPERTS", "MAX_MASK_BITS"]

TABLE_WORK = 1 << 26
"""Mask evaluations (:func:`table_work`) above which a layer gets no mask scan; then the node-set scan
counts its patterns against the same limit, and a layer over it too gets MILPs for its vectors.
Measured: 33.6 million per layer of ``mixed-mixtral-8x7b-5g-mec`` (two shared nodes, two private, 8
experts) take about 2 s; 4 shared nodes of 8 experts (4.3 billion masks) go to the node-set scan (43
million patterns a layer of ``mixed-mixtral-8x7b-wifi-jetson``, 0.3-1 s; 430 million on the paper Mixtral
``wifi-jetson`` and ``wifi-rtx`` files, which are out), and 16-expert top-2 layers are out.
Top-1 layers count dynamic-programme steps instead: 21.4 million for a 16-expert layer on 4 nodes, 0.35 s."""

PROFILE_MEMORY = 1 << 24
"""Entries (8 bytes each) of the node-set scan's largest matrices: its one-hot matrix, and each block of the
product and of its right-hand side.
A layer whose one-hot matrix would be larger gets no table (``wifi-jetson`` Mixtral: 6 561 x 192)."""

MAX_NODE_SETS = 4096
"""Node sets of one expert above which the node-set scan is not tried (their irredundancy test is a
Python loop; the ``wifi-jetson`` Mixtral file has 14 to try per expert)."""

_BLOCK = PROFILE_MEMORY  # entries of one product block (smaller in a test, to split the low half's columns)

MAX_TABLE_EXPERTS = 16
"""Experts per layer above which no bitmask scan is built (``W_u`` has ``2^E`` entries per user)."""

MAX_MASK_BITS = 62
"""Experts per layer above which no table at all is built (patterns are stored as int64 bitmasks)."""


@dataclass
class CountTable:
    """``g_l(k)`` for every count vector ``k`` of one layer (see the module docstring).

    Attributes
    ----------
    layer : int
    cost : float (hi_1 + 1, ..., hi_N + 1)
        ``g_l(k)`` in seconds (the layer's share of ``T``); ``inf`` where no pattern has these counts.
    masks : int64 (hi_1 + 1, ..., hi_N + 1, N)
        An optimal pattern of each ``k``: node ``n``'s experts as a bitmask.
    work : int
        Mask evaluations the scan made (:func:`table_work`).
    dominance : bool
        ``cost[k]`` is ``inf`` also where a vector one count below reaches the same latency (the node-set
        scan, "Many shared nodes" in the module docstring); a finite ``cost[k]`` is then the least latency
        over the patterns with counts at most ``k``, and equals ``g_l(k)``.
    """

    layer: int
    cost: np.ndarray
    masks: np.ndarray
    work: int
    dominance: bool = False

    def pattern(self, k, max_experts: int) -> np.ndarray:
        """bool ``(N, max_experts)``: the optimal pattern the table holds for count vector ``k``."""
        m = self.masks[tuple(int(v) for v in k)]
        out = np.zeros((len(m), max_experts), dtype=bool)
        bits = min(max_experts, MAX_MASK_BITS)
        out[:, :bits] = (m[:, None] >> np.arange(bits)[None, :]) & 1
        return out


def _popcount(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64).copy()
    out = np.zeros_like(a)
    while np.any(a):
        out += a & 1
        a >>= 1
    return out


def _useful(instance: Instance, layer: int) -> np.ndarray:
    """bool ``(N, E_l)``: the layer's elements that have a variable in the formulations (``support``)."""
    useful = np.zeros((instance.N, int(instance.experts[layer])), dtype=bool)
    el = support(instance).elements
    mine = el[el[:, 1] == layer]
    useful[mine[:, 0], mine[:, 2]] = True
    return useful


def _layer_data(instance: Instance, layer: int, hi: np.ndarray):
    """Useful masks, reachability, and the split into shared and private nodes (``None``: too many experts)."""
    E = int(instance.experts[layer])
    if E > MAX_TABLE_EXPERTS:
        return None
    t, c = instance.latency[:, :, layer], instance.cloud_latency[:, layer]
    reach = np.isfinite(t) & (t < c[:, None])
    useful = _useful(instance, layer).astype(np.int64) @ np.left_shift(1, np.arange(E, dtype=np.int64))  # bitmasks
    active = [n for n in range(instance.N) if hi[n] > 0 and useful[n]]
    private: dict[int, int] = {}
    for n in active:
        users = np.flatnonzero(reach[:, n])
        if len(users) == 1 and int(users[0]) not in private:
            private[int(users[0])] = n
    shared = [n for n in active if n not in private.values()]
    every = np.arange(1 << E, dtype=np.int64)
    masks = {}
    for n in active:
        m = every[(every & ~useful[n]) == 0]
        masks[n] = m[_popcount(m) <= hi[n]]
    return E, reach, shared, private, masks


def _singletons(instance: Instance, layer: int) -> bool:
    """Whether every activated set of ``layer`` has one expert (the top-1 dynamic programme applies)."""
    rows = instance.set_layer == layer
    return bool(np.all(instance.set_sizes[rows] == 1))


SCANS = ("auto", "dp", "masks", "node-sets")
"""``count_table``'s methods: ``"auto"`` picks the dynamic programme for top-1 layers, else the mask scan
within :data:`TABLE_WORK`, else the node-set scan; the others force one (for ablation and benchmarks)."""


def _method(instance: Instance, layer: int, hi: np.ndarray, scan: str) -> tuple[str, float]:
    """``(method, work)`` of :func:`count_table` (``work`` is ``inf`` when the method builds no table)."""
    if scan not in SCANS:
        raise ValueError(f"scan must be one of {SCANS}, got {scan!r}")
    hi = np.asarray(hi)
    if int(instance.experts[layer]) > MAX_MASK_BITS:
        return scan, math.inf
    if scan == "dp" or (scan == "auto" and _singletons(instance, layer)):
        if not _singletons(instance, layer):
            return "dp", math.inf
        active = int(np.sum(hi > 0))
        return "dp", float(instance.experts[layer]) * 2 ** active * math.prod(int(h) + 1 for h in hi)
    if scan == "node-sets":
        return scan, _profile_work(instance, layer, hi)
    data = _layer_data(instance, layer, hi)
    if data is None:
        return "masks", math.inf
    _, _, shared, private, masks = data
    work = float(math.prod(len(masks[n]) for n in shared)) * (1 + sum(len(masks[p]) for p in private.values()))
    if scan == "masks" or work <= TABLE_WORK:
        return "masks", work
    return "node-sets", _profile_work(instance, layer, hi)


def table_work(instance: Instance, layer: int, hi: np.ndarray, scan: str = "auto") -> float:
    """Mask evaluations (top-1 layers: DP steps; node-set scan: patterns) :func:`count_table` makes
    (``inf`` when it would build none)."""
    return _method(instance, layer, hi, scan)[1]


def _weights(instance: Instance, layer: int, E: int) -> np.ndarray:
    """``W (U, 2^E)``: ``W[u, A] = sum_{S subset of A} p[u, layer, S]``."""
    W = np.zeros((instance.U, 1 << E))
    idx = np.arange(1 << E)
    for u in range(instance.U):
        sl = instance.sets_of(u, layer)
        se = instance.set_experts[sl]
        bits = np.where(se >= 0, np.left_shift(1, np.maximum(se, 0)), 0).sum(axis=1)
        np.add.at(W[u], bits, instance.set_prob[sl])
        for b in range(E):
            low = idx[(idx >> b) & 1 == 0]
            W[u, low | (1 << b)] += W[u, low]
    return W


def count_table(instance: Instance, layer: int, hi: np.ndarray, *, max_work: float = TABLE_WORK,
                deadline: float = math.inf, scan: str = "auto") -> CountTable | None:
    """Exact ``g_l(k)`` for every ``0 <= k <= hi`` (proof in the module docstring).

    Top-1 layers get the dynamic programme, others the mask scan when it takes at most
    :data:`TABLE_WORK` evaluations, else the node-set scan, whose table is ``inf`` also at the
    dominated vectors (``CountTable.dominance``).

    Parameters
    ----------
    hi : int (N,)
        The largest count of each node (:func:`~.enumeration.count_vectors`' ranges).
    max_work : float
        Return ``None`` instead when the scan would take more mask evaluations.
    deadline : float
        ``time.perf_counter()`` value at which to give up (returns ``None``).
    scan : {"auto", "dp", "masks", "node-sets"}
        The method (:data:`SCANS`); a forced one that does not apply gives ``None``.

    Returns
    -------
    CountTable or None
    """
    hi = np.asarray(hi, dtype=np.int64)
    method, work = _method(instance, layer, hi, scan)
    if math.isinf(work) or work > max_work:  # inf: the method builds no table, whatever max_work
        return None
    if method == "dp":
        return _singleton_table(instance, layer, hi, work, deadline)
    if method == "node-sets":
        return _profile_table(instance, layer, hi, _profile_options(instance, layer, hi), work, deadline)
    E, reach, shared, private, masks = _layer_data(instance, layer, hi)
    N, U = instance.N, instance.U
    W = _weights(instance, layer, E)
    t, c, w = instance.latency[:, :, layer], instance.cloud_latency[:, layer], instance.weight
    # per user: the distinct latencies in increasing order, the nodes at each, the step to the next
    levels = []
    for u in range(U):
        nodes = [n for n in np.flatnonzero(reach[u]) if n in masks]
        th = sorted({float(t[u, n]) for n in nodes})
        steps = [((th[j + 1] if j + 1 < len(th) else float(c[u])) - th[j], [n for n in nodes if t[u, n] == th[j]])
                 for j in range(len(th))]
        levels.append(steps)

    def user_latency(u: int, m: dict) -> np.ndarray:
        acc = np.zeros(1, dtype=np.int64)
        gain = 0.0
        for step, nodes in levels[u]:
            for n in nodes:
                if n in m:
                    acc = acc | m[n]
            gain = gain + step * W[u][acc]
        return w[u] * (float(c[u]) - gain)

    users = {p: u for u, p in private.items()}
    priv = sorted(users)  # private nodes, in node order: the trailing axes of each block below
    cost = np.full(tuple(hi + 1), np.inf)
    best = np.zeros(tuple(hi + 1) + (N,), dtype=np.int64)
    counts = {n: _popcount(m) for n, m in masks.items()}
    by_count = {n: {k: masks[n][counts[n] == k] for k in range(hi[n] + 1)} for n in masks}
    columns = {p: [np.flatnonzero(counts[p] == k) for k in range(hi[p] + 1)] for p in private.values()}
    for key in itertools.product(*[range(hi[n] + 1) for n in shared]):
        if time.perf_counter() >= deadline:
            return None
        groups = [by_count[n][k] for n, k in zip(shared, key)]
        if any(len(g) == 0 for g in groups):
            continue
        grids = np.meshgrid(*groups, indexing="ij") if groups else []
        sh = {n: g.ravel() for n, g in zip(shared, grids)}
        B = len(grids[0].ravel()) if grids else 1
        total = np.zeros((B,) + tuple(hi[p] + 1 for p in priv))
        choice = {}
        for u in range(U):
            if u in private:
                p = private[u]
                C = np.broadcast_to(user_latency(u, {**{n: v[:, None] for n, v in sh.items()},
                                                     p: masks[p][None, :]}), (B, len(masks[p])))
                part = np.full((B, hi[p] + 1), np.inf)
                arg = np.zeros((B, hi[p] + 1), dtype=np.int64)
                for k, cols in enumerate(columns[p]):
                    if len(cols):
                        j = np.argmin(C[:, cols], axis=1)
                        part[:, k] = C[np.arange(B), cols[j]]
                        arg[:, k] = masks[p][cols[j]]
                shape = [B] + [1] * len(priv)
                shape[1 + priv.index(p)] = hi[p] + 1
                total = total + part.reshape(shape)
                choice[p] = arg
            else:
                total = total + np.broadcast_to(user_latency(u, sh), (B,)).reshape((B,) + (1,) * len(priv))
        h = np.argmin(total, axis=0)  # the best shared combination for each private count vector
        val = np.take_along_axis(total, h[None], axis=0)[0]
        index: list = [0] * N
        for n, k in zip(shared, key):
            index[n] = k
        for p in priv:
            index[p] = slice(None)
        cost[tuple(index)] = val
        block = np.zeros(val.shape + (N,), dtype=np.int64)
        for n, v in sh.items():
            block[..., n] = v[h]
        grid = np.indices(val.shape) if priv else np.zeros((0,), dtype=np.int64)
        for i, p in enumerate(priv):
            block[..., p] = choice[p][h, grid[i]]
        best[tuple(index)] = block
    return CountTable(layer=layer, cost=cost, masks=best, work=int(work))


def _profile_options(instance: Instance, layer: int, hi: np.ndarray) -> list[np.ndarray] | None:
    """Per expert, the node sets worth caching it on (bitmasks over nodes, the empty set first).

    A set is kept when each of its nodes is strictly the fastest of the set for some user (below the
    cloud): a node that is not adds a count and changes no latency.  Distinct nodes are then the
    fastest for distinct users, so a kept set has at most ``U`` nodes, and only those sets are tried.
    ``None``: too many experts, or more than :data:`MAX_NODE_SETS` sets to try for one expert."""
    E = int(instance.experts[layer])
    if E > MAX_TABLE_EXPERTS:
        return None
    t, c = instance.latency[:, :, layer], instance.cloud_latency[:, layer]
    tau = np.where(np.isfinite(t) & (t < c[:, None]), t, np.inf)  # (U, N): inf where no gain
    useful = _useful(instance, layer)
    useful[np.asarray(hi) <= 0] = False
    out = []
    for e in range(E):
        nodes = np.flatnonzero(useful[:, e])
        sizes = range(1, min(len(nodes), instance.U) + 1)
        if sum(math.comb(len(nodes), r) for r in sizes) > MAX_NODE_SETS:
            return None
        kept = [0]
        for r in sizes:
            for subset in itertools.combinations(nodes.tolist(), r):
                lam = tau[:, list(subset)].min(axis=1)
                if all(np.any(tau[:, [m for m in subset if m != n]].min(axis=1, initial=np.inf) > lam)
                       for n in subset):
                    kept.append(sum(1 << n for n in subset))
        out.append(np.array(kept, dtype=np.int64))
    return out


def _profile_halves(options: list[np.ndarray]) -> int:
    """How many experts go into the low half (the split that balances the two halves' combinations)."""
    sizes = [len(o) for o in options]
    return min(range(len(sizes) + 1), key=lambda j: max(math.prod(sizes[:j]), math.prod(sizes[j:])))


def _terms(instance: Instance, layer: int) -> list[tuple[int, float, float]]:
    """``(u, theta_j, w_u (theta_{j+1} - theta_j))`` for each user's distinct latencies below the cloud."""
    t, c, w = instance.latency[:, :, layer], instance.cloud_latency[:, layer], instance.weight
    out = []
    for u in range(instance.U):
        th = sorted({float(v) for v, ok in zip(t[u], np.isfinite(t[u]) & (t[u] < c[u])) if ok})
        for j, v in enumerate(th):
            out.append((u, v, float(w[u]) * ((th[j + 1] if j + 1 < len(th) else float(c[u])) - v)))
    return out


def _profile_work(instance: Instance, layer: int, hi: np.ndarray) -> float:
    """Patterns the node-set scan makes (``inf`` when its one-hot matrix would pass :data:`PROFILE_MEMORY`)."""
    options = _profile_options(instance, layer, hi)
    if options is None:
        return math.inf
    E1 = _profile_halves(options)
    rows = math.prod(len(o) for o in options[E1:])
    if rows * len(_terms(instance, layer)) * (1 << (len(options) - E1)) > PROFILE_MEMORY:
        return math.inf
    return float(math.prod(len(o) for o in options))


def _profile_table(instance: Instance, layer: int, hi: np.ndarray, options: list[np.ndarray], work: float,
                   deadline: float) -> CountTable | None:
    """The node-set scan with meet in the middle (module docstring, "Many shared nodes")."""
    N, U = instance.N, instance.U
    E = len(options)
    W = _weights(instance, layer, E)
    t, c, w = instance.latency[:, :, layer], instance.cloud_latency[:, layer], instance.weight
    tau = np.where(np.isfinite(t) & (t < c[:, None]), t, np.inf)
    # terms (u, j): user u's distinct latencies theta_j below the cloud, weighted by w_u (theta_{j+1} - theta_j)
    terms = _terms(instance, layer)
    const = float(np.sum(w * c))
    T = len(terms)
    node_bits = np.left_shift(1, np.arange(N, dtype=np.int64))
    # per expert and option: its counts and, per term, whether the expert is available at theta_j
    opt_counts = [((o[:, None] & node_bits[None, :]) != 0).astype(np.int64) for o in options]
    opt_avail = []
    for o in options:
        lam = np.full((len(o), U), np.inf)
        for n in range(N):
            on = (o >> n) & 1 == 1
            lam[on] = np.minimum(lam[on], tau[:, n][None, :])
        opt_avail.append(np.array([[lam[i, u] <= v for (u, v, _) in terms] for i in range(len(o))],
                                  dtype=bool).reshape(len(o), T))
    E1 = _profile_halves(options)
    shape = tuple(int(h) + 1 for h in hi)
    strides = np.array([math.prod(shape[n + 1:]) for n in range(N)], dtype=np.int64)

    def half(experts: range):
        """Every combination of one option per expert: counts, per-term masks (local bits), option indices."""
        counts = np.zeros((1, N), dtype=np.int64)
        masks = np.zeros((1, T), dtype=np.int64)
        picks = np.zeros((1, 0), dtype=np.int64)
        for b, e in enumerate(experts):
            m, r = len(options[e]), len(counts)
            counts = (counts[:, None, :] + opt_counts[e][None, :, :]).reshape(r * m, N)
            masks = (masks[:, None, :] | (opt_avail[e][None, :, :].astype(np.int64) << b)).reshape(r * m, T)
            picks = np.concatenate([np.repeat(picks, m, axis=0), np.tile(np.arange(m), len(picks))[:, None]], axis=1)
        ok = np.all(counts <= np.asarray(hi)[None, :], axis=1)
        return counts[ok], masks[ok], picks[ok]

    lo_counts, lo_masks, lo_picks = half(range(E1))
    hi_counts, hi_masks, hi_picks = half(range(E1, E))
    E2 = E - E1
    # sort the high half by its count vector; one-hot rows pick each term's W entry by the high mask
    hi_key = hi_counts @ strides
    order = np.argsort(hi_key, kind="stable")
    hi_counts, hi_masks, hi_picks, hi_key = hi_counts[order], hi_masks[order], hi_picks[order], hi_key[order]
    starts = np.flatnonzero(np.r_[True, hi_key[1:] != hi_key[:-1]])
    group_counts = hi_counts[starts]
    R = len(hi_key)
    onehot = np.zeros((R, T << E2))
    onehot[np.repeat(np.arange(R), T), ((np.arange(T)[None, :] << E2) + hi_masks).ravel()] = 1.0
    Wt = np.array([coef * W[u].reshape(1 << E2, 1 << E1) for (u, _, coef) in terms]).reshape(T, 1 << E2, 1 << E1)
    size = math.prod(shape)
    gain = np.full(size, -np.inf)  # the largest sum_t coef_t W_t over exact-count patterns
    win_lo = np.zeros(size, dtype=np.int64)
    win_hi = np.zeros(size, dtype=np.int64)
    lo_key = lo_counts @ strides
    for key in np.unique(lo_key):
        if time.perf_counter() >= deadline:
            return None
        cols = np.flatnonzero(lo_key == key)
        v, arg = np.full(R, -np.inf), np.zeros(R, dtype=np.int64)
        # blocks of at most _BLOCK entries, both the product (R x chunk) and B ((T 2^E2) x chunk)
        for chunk in np.array_split(cols, min(len(cols), -(-len(cols) * max(R, T << E2) // _BLOCK))):
            B = Wt[np.arange(T)[:, None], :, lo_masks[chunk].T].transpose(0, 2, 1).reshape(T << E2, len(chunk))
            S = onehot @ B  # (R, |chunk|): the gain of every (high, low) pair
            a = np.argmax(S, axis=1)
            sa = S[np.arange(R), a]
            up = sa > v
            v[up], arg[up] = sa[up], chunk[a[up]]
        best = np.maximum.reduceat(v, starts)
        total = group_counts + lo_counts[cols[0]][None, :]
        fits = np.all(total <= np.asarray(hi)[None, :], axis=1)
        cells = total[fits] @ strides
        better = best[fits] > gain[cells]
        if not better.any():
            continue
        # the first high row of each group that reaches its maximum
        group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, R]))
        hit = np.flatnonzero(v == best[group_of])
        first = hit[np.unique(group_of[hit], return_index=True)[1]]
        g = np.flatnonzero(fits)[better]
        gain[cells[better]] = best[g]
        win_hi[cells[better]] = first[g]
        win_lo[cells[better]] = arg[first[g]]
    # exact-count minima over the kept node sets, recomputed from each winning pattern in a fixed order
    found = np.flatnonzero(np.isfinite(gain))
    masks = np.zeros((size, N), dtype=np.int64)
    cost = np.full(size, np.inf)
    for i, cell in enumerate(found):
        if i % 1024 == 0 and time.perf_counter() >= deadline:
            return None
        picks = np.concatenate([lo_picks[win_lo[cell]], hi_picks[win_hi[cell]]])
        for e, i in enumerate(picks):
            sets = int(options[e][i])
            for n in range(N):
                if (sets >> n) & 1:
                    masks[cell, n] |= 1 << e
        A = [0] * T
        for e, i in enumerate(picks):
            for j in np.flatnonzero(opt_avail[e][i]):
                A[j] |= 1 << e
        cost[cell] = const - math.fsum(coef * W[u, A[j]] for j, (u, _, coef) in enumerate(terms))
    cost = cost.reshape(shape)
    # keep a vector only where it beats every vector one count below (else it is dominated: same or more
    # latency, more storage); then cost[k] = min over patterns with counts <= k, where finite
    below = np.full(shape, np.inf)
    least = cost.copy()
    for n in range(N):  # least[k] = min over k' <= k of cost[k']
        least = np.minimum.accumulate(least, axis=n)
    for n in range(N):
        idx = [slice(None)] * N
        idx[n] = slice(1, None)
        prev = [slice(None)] * N
        prev[n] = slice(None, -1)
        below[tuple(idx)] = np.minimum(below[tuple(idx)], least[tuple(prev)])
    cost = np.where(cost < below, cost, np.inf)
    return CountTable(layer=layer, cost=cost, masks=masks.reshape(shape + (N,)), work=int(work), dominance=True)

def _singleton_table(instance: Instance, layer: int, hi: np.ndarray, work: float, deadline: float) -> CountTable | None:
    """The top-1 dynamic programme over experts (module docstring)."""
    N, U = instance.N, instance.U
    E = int(instance.experts[layer])
    t, c, w = instance.latency[:, :, layer], instance.cloud_latency[:, layer], instance.weight
    p = np.zeros((U, E))  # p[u, e] = p[u, layer, {e}]
    for u in range(U):
        sl = instance.sets_of(u, layer)
        np.add.at(p[u], instance.set_experts[sl][:, 0], instance.set_prob[sl])
    useful = _useful(instance, layer)
    useful[hi == 0] = False
    shape = tuple(int(h) + 1 for h in hi)
    strides = np.array([math.prod(shape[n + 1:]) for n in range(N)], dtype=np.int64)
    size = math.prod(shape)
    grid = np.indices(shape).reshape(N, -1)  # grid[:, i]: the count vector of flat index i
    reach_t = np.where(np.isfinite(t) & (t < c[:, None]), t, np.inf)  # (U, N)
    F = np.full(size, np.inf)
    F[0] = 0.0
    experts = [e for e in range(E) if useful[:, e].any()]
    choice = np.zeros((len(experts), size), dtype=np.int64)  # the node set (bitmask) of each expert
    for j, e in enumerate(experts):
        if time.perf_counter() >= deadline:
            return None
        nodes = np.flatnonzero(useful[:, e])
        G = F.copy()  # the empty node set: no gain, no count
        arg = np.zeros(size, dtype=np.int64)
        for r in range(1, len(nodes) + 1):
            for subset in itertools.combinations(nodes, r):
                sub = np.array(subset)
                tau = np.minimum(c, reach_t[:, sub].min(axis=1))
                gain = float(np.sum(w * p[:, e] * (c - tau)))
                ok = np.all(grid[sub] >= 1, axis=0)  # states k with k - 1_sub >= 0
                cand = np.full(size, np.inf)
                cand[ok] = F[np.flatnonzero(ok) - int(strides[sub].sum())] - gain
                better = cand < G
                G[better] = cand[better]
                arg[better] = int(np.sum(1 << sub))
        F = G
        choice[j] = arg
    cost = (float(np.sum(w * c)) + F).reshape(shape)
    masks = np.zeros((size, N), dtype=np.int64)
    idx = np.arange(size)
    live = np.isfinite(F)
    for j in range(len(experts) - 1, -1, -1):
        nodeset = choice[j][idx]
        for n in range(N):
            has = live & ((nodeset >> n) & 1 == 1)
            masks[has, n] |= 1 << experts[j]
            idx = np.where(has, idx - strides[n], idx)
    return CountTable(layer=layer, cost=cost, masks=masks.reshape(shape + (N,)), work=int(work))
