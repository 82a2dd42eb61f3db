"""Baselines a paper compares against: ``cloud``, ``random``, ``popularity``, ``independent``.

None carries a guarantee.  All return placements that respect every node's
capacity and report the project's evaluator's latency.
"""
from __future__ import annotations

import time

import numpy as np

from ..instances.generators import assemble
from ..instances.model import Instance, Placement
from ..objective import activation_marginals
from ..result import Result, Status, make_result
from .greedy import greedy
from .common import reject_unknown
from .successive import node_order

__all__ = ["cloud", "random_placement", "popularity", "independent", "activation_marginals",
           "independent_surrogate"]


def cloud(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
          **unknown) -> Result:
    """Cache nothing: every expert runs in the cloud, ``T = T(empty)``, ``R = 0``.

    Parameters
    ----------
    instance : Instance
    seed, time_limit
        Unused; recorded.

    Returns
    -------
    Result
        The empty placement, status ``heuristic``.

    Notes
    -----
    The reference point of every reduction.  ``O(1)`` plus one evaluation.
    """
    t0 = time.perf_counter()
    reject_unknown("cloud", unknown, ())
    return make_result(instance, instance.empty_placement(), algorithm="cloud", status=Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params={"seed": seed}, seed=seed)


def _fill(instance: Instance, x: np.ndarray, n: int, order: np.ndarray, free: int) -> int:
    """Add ``(l, e)`` pairs of ``order int (k, 2)`` to node ``n`` while they fit (skipping those that
    do not); returns the free space left.  Vectorised first-fit: a prefix scan, repeated only
    when an element is skipped."""
    size = instance.expert_size[order[:, 0]] if len(order) else np.zeros(0, dtype=np.int64)
    start = 0
    while start < len(order) and free > 0:
        csum = np.cumsum(size[start:])
        k = int(np.searchsorted(csum, free, side="right"))        # first k fit as a block
        if k:
            sel = order[start:start + k]
            x[n, sel[:, 0], sel[:, 1]] = True
            free -= int(csum[k - 1])
        start += k
        if start < len(order):
            rest = np.nonzero(size[start:] <= free)[0]             # skip what no longer fits
            if len(rest) == 0:
                break
            start += int(rest[0])
    return free


def random_placement(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
                     **unknown) -> Result:
    """Each node caches experts in a uniformly random order until nothing more fits.

    Parameters
    ----------
    seed : int, optional
        Seed of ``numpy.random.default_rng``; when ``None`` a fresh seed is
        drawn from the OS and recorded in the result, so every run can be
        repeated.

    Returns
    -------
    Result
        Status ``heuristic``; ``seed`` and ``params["seed"]`` hold the seed used.

    Notes
    -----
    No guarantee.  Per node: a random permutation of all ``(l, e)``
    (``O(sum_l E_l)``) and a first-fit pass, so every node ends full (no
    further expert fits).
    """
    t0 = time.perf_counter()
    reject_unknown("random", unknown, ())
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2 ** 63))
    rng = np.random.default_rng(seed)
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    pairs = np.argwhere(instance.valid_mask()).astype(np.int64)
    for n in range(instance.N):
        _fill(instance, x, n, pairs[rng.permutation(len(pairs))], int(instance.capacity[n]))
    return make_result(instance, Placement(x), algorithm="random", status=Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params={"seed": seed}, seed=seed)


def popularity(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
               **unknown) -> Result:
    """Most frequently activated experts first, fastest nodes first.

    Nodes are filled in ascending mean latency (:func:`~.successive.node_order`
    with ``"latency"``).  Node ``n`` ranks the ``(l, e)`` by popularity among
    the users that reach it, ``sum_{u reaches n} w_u q[u,l,e]`` (``q`` from
    :func:`activation_marginals`), putting experts not yet cached on a faster
    node first, and caches them first-fit until full.

    Returns
    -------
    Result
        Status ``heuristic``.

    Notes
    -----
    No guarantee; blind to co-activation and to which node serves whom best.
    ``O(N sum_l E_l log sum_l E_l)`` after one pass over the routing table.
    """
    t0 = time.perf_counter()
    reject_unknown("popularity", unknown, ())
    q = activation_marginals(instance)
    reach = instance.reachable()
    valid = instance.valid_mask()
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    pairs = np.argwhere(valid).astype(np.int64)
    for n in node_order(instance, "latency"):
        pop = np.einsum("u,ule->le", instance.weight * reach[:, n], q)[pairs[:, 0], pairs[:, 1]]
        if not reach[:, n].any():
            continue
        elsewhere = x.any(axis=0)[pairs[:, 0], pairs[:, 1]]
        order = np.lexsort((np.arange(len(pairs)), -pop, elsewhere))
        _fill(instance, x, n, pairs[order], int(instance.capacity[n]))
    return make_result(instance, Placement(x), algorithm="popularity", status=Status.HEURISTIC,
                       runtime_s=time.perf_counter() - t0, params={"seed": seed}, seed=seed)


def independent_surrogate(instance: Instance) -> Instance:
    """The ``K = 1`` surrogate: every ``(u, l)`` activates the single expert ``e``
    with probability ``q[u,l,e] / sum_e q[u,l,e]`` (activation marginals).

    Same layers, nodes, latencies and user weights.  When every activated set
    has ``K_l`` members, ``sum_e q[u,l,e] = K_l`` and the surrogate's ``R`` is
    ``1/K_l`` times the co-activation-blind ``sum_{u,l,e} w_u q (c - tau)``
    per layer; otherwise the per-``(u, l)`` normalisation weights pairs by the
    inverse of their mean set size.
    """
    q = activation_marginals(instance)
    lat = instance.latency
    routing = []
    for u in range(instance.U):
        row = []
        for l in range(instance.L):
            e = np.nonzero(q[u, l] > 0)[0]
            row.append((e[:, None], q[u, l, e]))
        routing.append(row)
    return assemble(name=f"{instance.name}-independent", experts=instance.experts, expert_size=instance.expert_size,
                    top_k=np.ones(instance.L, dtype=np.int64), node_names=instance.node_names,
                    capacity=instance.capacity, user_names=instance.user_names, weight=instance.weight,
                    latency=lat, cloud_latency=instance.cloud_latency, routing=routing,
                    size_unit=instance.size_unit, metadata={"surrogate_of": instance.name})


def independent(instance: Instance, *, seed: int | None = None, time_limit: float | None = None,
                **unknown) -> Result:
    """Co-activation-blind greedy: :func:`~.greedy.greedy` on :func:`independent_surrogate`,
    evaluated on the true objective.

    The surrogate is a ``K = 1`` facility-location objective, so the greedy
    is well founded there; the gap to the true optimum measures what ignoring
    co-activation costs.

    Returns
    -------
    Result
        Evaluated on ``instance``; ``info["surrogate_reduction"]`` is ``R`` on
        the surrogate and ``info["surrogate"]`` the greedy's own record.

    Notes
    -----
    No guarantee on the true ``R`` (the surrogate's guarantees, see
    :func:`~.greedy.greedy`, hold for the surrogate objective only).  Cost: one
    pass over the routing table plus the greedy on ``U L max E`` singleton rows.
    """
    t0 = time.perf_counter()
    reject_unknown("independent", unknown, ())
    sur = independent_surrogate(instance)
    res = greedy(sur, seed=seed, time_limit=time_limit)
    info = {"surrogate_reduction": res.reduction, "surrogate": res.info}
    status = Status.TIME_LIMIT if res.status == Status.TIME_LIMIT else Status.HEURISTIC
    return make_result(instance, res.placement, algorithm="independent", status=status,
                       runtime_s=time.perf_counter() - t0, params={"seed": seed}, seed=seed, info=info)
