"""Instance generators.

:func:`assemble` turns per-``(u, l)`` set distributions plus dense arrays into
an :class:`~slimcaching.instances.model.Instance`; every generator and the
trace importer go through it.  :func:`random_instance` is the generic seeded
generator behind ``slimcaching generate --layers ...``: skewed per-user,
per-layer Zipf popularities and Plackett-Luce Top-K co-activation.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .model import Instance
from .routing import plackett_luce_sets, zipf_popularity

__all__ = ["assemble", "random_instance"]


def assemble(*, name: str, experts: Sequence[int], expert_size: Sequence[int], top_k: Sequence[int],
             node_names: Sequence[str], capacity: Sequence[int], user_names: Sequence[str],
             weight: np.ndarray, latency: np.ndarray, cloud_latency: np.ndarray,
             routing: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], size_unit: str = "MiB",
             metadata: dict | None = None) -> Instance:
    """Build an instance from dense arrays and ``routing[u][l] = (sets int (C, k), p (C,))``.

    ``sets`` rows may be padded with ``-1``.  Probabilities are renormalised to
    sum to 1 exactly (they must already be positive).
    """
    L = len(experts)
    U = len(user_names)
    counts = np.zeros(U * L + 1, dtype=np.int64)
    kmax = 1
    for u in range(U):
        for l in range(L):
            sets, p = routing[u][l]
            counts[u * L + l + 1] = len(p)
            kmax = max(kmax, int(np.prod(np.shape(sets))) // max(len(p), 1))
    # fill the flat table in place: no int64 copy of every (u, l) block is kept alive at once
    offsets = np.cumsum(counts)
    set_experts = np.full((int(offsets[-1]), kmax), -1, dtype=np.int64)
    set_prob = np.zeros(int(offsets[-1]))
    for u in range(U):
        for l in range(L):
            sets, p = routing[u][l]
            a, b = offsets[u * L + l], offsets[u * L + l + 1]
            sets = np.asarray(sets).reshape(len(p), -1)
            set_experts[a:b, : sets.shape[1]] = sets
            p = np.asarray(p, dtype=float)
            set_prob[a:b] = p / p.sum()
    ul = np.repeat(np.arange(U * L), counts[1:])
    w = np.asarray(weight, dtype=float)
    return Instance(
        name=name, size_unit=size_unit, experts=experts, expert_size=expert_size, top_k=top_k,
        node_names=node_names, capacity=capacity, user_names=user_names, weight=w / w.sum(),
        latency=latency, cloud_latency=cloud_latency, set_experts=set_experts, set_prob=set_prob,
        set_user=ul // max(L, 1), set_layer=ul % max(L, 1), offsets=offsets, metadata=dict(metadata or {}),
    )


def random_instance(*, layers: int = 4, experts: int | Sequence[int] = 8, top_k: int | Sequence[int] = 2,
                    nodes: int = 3, users: int = 3, seed: int = 0, capacity_fraction: float = 0.25,
                    expert_size: int | Sequence[int] = 1, skew: float = 1.0, tokens: int = 4096,
                    exact_limit: int = 200_000, reach: float = 0.7, name: str | None = None) -> Instance:
    """A seeded random instance with real co-activation.

    Parameters
    ----------
    layers, experts, top_k, expert_size
        ``L``, ``E_l``, ``K_l``, ``s_l`` (an int for all layers or one per layer).
    nodes, users : int
        ``N`` edge nodes, ``U`` users.
    capacity_fraction : float
        Each node stores this fraction of the whole model (rounded down to whole units).
    skew : float
        Zipf exponent of the per-user, per-layer expert popularity (0 = uniform).
    tokens : int
        Tokens sampled per ``(u, l)`` when exact enumeration is too large.
    exact_limit : int
        Enumerate exactly when ``C(E,K) K! <= exact_limit``.
    reach : float
        Probability that a user reaches a given node (each user reaches at least one).
    seed : int
        Every random choice derives from it.

    Notes
    -----
    Users weights are Dirichlet(2); node latencies ``t[u,n,l]`` are
    ``U(0.15, 0.85) * c[u,l]`` with a per-user, per-node base and a +-10 %
    per-layer jitter; cloud latencies ``c[u,l]`` are ``U(0.05, 0.12)`` seconds.
    """
    rng = np.random.default_rng(seed)
    E = np.broadcast_to(np.asarray(experts, dtype=np.int64), (layers,)).copy()
    K = np.broadcast_to(np.asarray(top_k, dtype=np.int64), (layers,)).copy()
    S = np.broadcast_to(np.asarray(expert_size, dtype=np.int64), (layers,)).copy()
    if np.any(K > E) or np.any(K < 1):
        raise ValueError("top_k must be between 1 and the number of experts")
    model_size = int((E * S).sum())
    cap = np.full(nodes, int(capacity_fraction * model_size), dtype=np.int64)
    w = rng.dirichlet(np.full(users, 2.0)) if users > 1 else np.ones(1)
    cloud = rng.uniform(0.05, 0.12, size=(users, 1)) * rng.uniform(0.9, 1.1, size=(users, layers))
    base = rng.uniform(0.15, 0.85, size=(users, nodes, 1))
    jitter = rng.uniform(0.9, 1.1, size=(users, nodes, layers))
    lat = base * jitter * cloud[:, None, :]
    reachable = rng.random((users, nodes)) < reach
    reachable[np.arange(users), rng.integers(0, nodes, size=users)] = True
    lat = np.where(reachable[:, :, None], lat, np.inf)
    routing, sampled = [], []
    for u in range(users):
        row = []
        for l in range(layers):
            pop = zipf_popularity(int(E[l]), skew, rng)
            sets, p, ntok = plackett_luce_sets(pop, int(K[l]), rng, tokens=tokens, exact_limit=exact_limit)
            row.append((sets, p))
            sampled.append(ntok)
        routing.append(row)
    meta = {
        "generator": "random_instance",
        "params": {"layers": layers, "experts": E.tolist(), "top_k": K.tolist(), "nodes": nodes,
                   "users": users, "seed": seed, "capacity_fraction": capacity_fraction,
                   "expert_size": S.tolist(), "skew": skew, "tokens": tokens,
                   "exact_limit": exact_limit, "reach": reach},
        "routing_model": "plackett-luce",
        "sampled_tokens_per_distribution": None if all(s is None for s in sampled) else tokens,
    }
    return assemble(
        name=name or f"random-L{layers}-E{int(E.max())}-K{int(K.max())}-N{nodes}-U{users}-s{seed}",
        experts=E, expert_size=S, top_k=K, node_names=[f"edge-{n}" for n in range(nodes)],
        capacity=cap, user_names=[f"user-{u}" for u in range(users)], weight=w, latency=lat,
        cloud_latency=cloud, routing=routing, metadata=meta,
    )
