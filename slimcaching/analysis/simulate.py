"""Token-level replay: a static placement against online caches of the same capacity.

:func:`simulate` replays a token stream -- sampled from the instance's
distributions, or the tokens of a router trace -- through

* ``placement``: the given static placement; an expert call of user ``u`` at
  layer ``l`` costs ``tau[u,l,e] = min(c[u,l], min{t[u,n,l] : x[n,l,e]})``
  exactly as in the objective;
* ``popularity``: the registered ``popularity`` baseline's placement, a static
  cache of the most frequently activated experts per node;
* ``lru`` / ``lfu``: online caches, one per node, each of the node's capacity
  ``Q_n`` in size units, starting empty.  A call is served by the fastest
  reachable node holding the expert (or the cloud when that is faster); when
  none holds it, it is a **miss**: it costs the cloud latency ``c[u,l]`` plus
  ``miss_penalty`` seconds, and the expert is inserted at the user's fastest
  reachable node for that layer (the *home* node), evicting the least recently
  used (LRU) or least frequently used (LFU: fewest calls since insertion, ties
  by least recent) experts until it fits; an expert larger than the node is
  not inserted.  Hits refresh recency and frequency at the serving node.

The experts of one token's set are fetched in parallel (a set costs its
slowest member, as in the objective); caches are updated after the set.  A
token costs the sum over its layers.  Tokens are weighted so the reported
``mean`` is what the objective predicts on the replayed tokens: user ``u`` has
weight ``w_u`` and, within a layer, its rows share it equally, so replaying
the exact tokens an instance was built from gives ``mean = T(x)``.
Percentiles (``p50``, ``p95``, ``p99``) are weighted the same way, over
tokens; ``max`` is the slowest token.

Stream order: sampled tokens are interleaved across users by a seeded
permutation; trace tokens play in token-id (time) order, users interleaved.
"""
from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..instances.model import Instance, Placement
from ..objective import tau as tau_of

__all__ = ["simulate", "TokenStream", "sample_stream", "trace_stream", "POLICIES", "weighted_quantile"]

POLICIES = ("lru", "lfu", "popularity")


@dataclass
class TokenStream:
    """Tokens to replay, in order.

    Attributes
    ----------
    user : int64 (n,)          instance user of each token.
    sets : int64 (n, L, k)     expert ids per layer, padded with ``-1`` (all ``-1``: the token skips the layer).
    weight : float64 (n, L)    weight of each (token, layer) row: ``w_u / rows of (u, l)``.
    source : str
    """

    user: np.ndarray
    sets: np.ndarray
    weight: np.ndarray
    source: str

    @property
    def token_weight(self) -> np.ndarray:
        """Weight of a whole token: its rows' mean weight times the layers it passes (for quantiles)."""
        present = (self.sets >= 0).any(axis=2)
        return np.where(present, self.weight, 0.0).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


def _row_weights(instance: Instance, user: np.ndarray, present: np.ndarray) -> np.ndarray:
    rows = np.zeros((instance.U, instance.L))
    np.add.at(rows, user, present.astype(float))
    share = instance.weight[:, None] / np.maximum(rows, 1)
    return np.where(present, share[user], 0.0)


def sample_stream(instance: Instance, tokens: int, seed: int) -> TokenStream:
    """``tokens`` tokens per user, each layer's set drawn from ``p[u,l,.]``; users interleaved (seeded)."""
    rng = np.random.default_rng([seed, 77])
    U, L, K = instance.U, instance.L, max(instance.max_set_size, 1)
    sets = np.full((U * tokens, L, K), -1, dtype=np.int64)
    user = np.repeat(np.arange(U), tokens)
    for u in range(U):
        for l in range(L):
            sl = instance.sets_of(u, l)
            p = instance.set_prob[sl]
            idx = rng.choice(len(p), size=tokens, p=p / p.sum())
            sets[u * tokens:(u + 1) * tokens, l, :] = instance.set_experts[sl][idx][:, :K]
    order = rng.permutation(len(user))
    user, sets = user[order], sets[order]
    return TokenStream(user, sets, _row_weights(instance, user, np.ones((len(user), L), dtype=bool)),
                       f"sampled: {tokens} tokens per user, seed {seed}")


def trace_stream(instance: Instance, path: str, *, fmt: str = "auto", user_column: str = "user",
                 layer_base: int = 0, max_tokens: int | None = None) -> TokenStream:
    """The tokens of a router trace, matched to the instance's users (by name) and layers
    (``metadata.trace.model_layers``, else ``0..L-1``)."""
    from ..instances.traces import read_trace

    tr = read_trace(path, fmt=fmt, user_column=user_column, layer_base=layer_base)
    layers = np.asarray((instance.metadata.get("trace") or {}).get("model_layers", list(range(instance.L))))
    if len(layers) != instance.L:
        raise InputError(path, ("", f"the instance has {instance.L} layers but its metadata maps "
                                    f"{len(layers)} trace layers"))
    lpos = np.full(int(max(layers.max(), tr.layer.max())) + 1, -1)
    lpos[layers] = np.arange(len(layers))
    bad = (tr.layer < 0) | (tr.layer >= len(lpos)) | (lpos[np.clip(tr.layer, 0, len(lpos) - 1)] < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(path, (f"$[{tr.row[i]}].layer", f"layer {int(tr.layer[i])} is not one of the instance's "
                                                         f"trace layers {layers.tolist()}"))
    names = {n: i for i, n in enumerate(instance.user_names)}
    tnames = [f"user-{u}" if not str(u).strip() else str(u) for u in tr.user_names]
    missing = [n for n in tnames if n not in names]
    if missing:
        raise InputError(path, ("", f"trace user {missing[0]!r} is not a user of instance {instance.name!r}"))
    umap = np.array([names[n] for n in tnames], dtype=np.int64)
    E = instance.experts[lpos[tr.layer]]
    ex = tr.experts
    if ((ex >= E[:, None]) & (ex >= 0)).any() or (ex >= 0).sum(axis=1).max() > instance.max_top_k:
        raise InputError(path, ("", f"the trace does not match the instance's model: expert ids or set sizes "
                                    f"beyond {instance.name!r}"))
    # tokens in time order: unique (token id, user) pairs, sorted by token id then user
    _, tid = np.unique(np.stack([tr.token, tr.user.astype(np.int64)], axis=1), axis=0, return_inverse=True)
    tid = tid.ravel()
    n = int(tid.max()) + 1
    if max_tokens is not None:
        keep = tid < max_tokens
        tid, sel = tid[keep], np.flatnonzero(keep)
        n = min(n, max_tokens)
    else:
        sel = np.arange(len(tid))
    K = max(int((ex >= 0).sum(axis=1).max()), 1)
    sets = np.full((n, instance.L, K), -1, dtype=np.int64)
    sets[tid, lpos[tr.layer[sel]], :] = ex[sel][:, :K]
    user = np.zeros(n, dtype=np.int64)
    user[tid] = umap[tr.user[sel]]
    present = (sets >= 0).any(axis=2)
    return TokenStream(user, sets, _row_weights(instance, user, present), f"trace: {path}")


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> list[float]:
    """Smallest value whose cumulative weight reaches ``q`` of the total (a weighted inverse CDF)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    tot = cum[-1] if len(cum) else 0.0
    out = []
    for x in q:
        i = int(np.searchsorted(cum, x * tot - 1e-12 * tot))
        out.append(float(v[min(i, len(v) - 1)]) if len(v) else float("nan"))
    return out


def _summary(instance: Instance, stream: TokenStream, row_latency: np.ndarray, served: np.ndarray,
             **extra) -> dict:
    """Mean (objective-consistent), weighted percentiles, max, and requests per node."""
    token_lat = row_latency.sum(axis=1)
    mean = float((row_latency * stream.weight).sum())
    p50, p95, p99 = weighted_quantile(token_lat, stream.token_weight, (0.5, 0.95, 0.99))
    N = instance.N
    counts = np.bincount(served[served >= 0], minlength=N + 1)
    req = {name: int(counts[n]) for n, name in enumerate(instance.node_names)}
    req["cloud"] = int(counts[N])
    calls = int(counts.sum())
    return {"mean": mean, "p50": p50, "p95": p95, "p99": p99, "max": float(token_lat.max()),
            "hit_rate": (calls - req["cloud"]) / calls if calls else 0.0, "requests": req, **extra}


def _static(instance: Instance, stream: TokenStream, x: np.ndarray) -> dict:
    """Replay through a static placement, vectorised: ``tau`` gathered per member, max per set."""
    tau = tau_of(instance, x)                                     # (U, L, E)
    L = instance.L
    ex = stream.sets
    valid = ex >= 0
    uu = np.broadcast_to(stream.user[:, None, None], ex.shape)
    ll = np.broadcast_to(np.arange(L)[None, :, None], ex.shape)
    member = np.where(valid, tau[uu, ll, np.maximum(ex, 0)], 0.0)
    row = member.max(axis=2)
    # which node serves each call: the fastest holder (or the cloud when it is faster)
    t = np.where(x.transpose(1, 2, 0)[None, :, :, :], instance.latency.transpose(0, 2, 1)[:, :, None, :], np.inf)
    best = t.argmin(axis=3)                                       # (U, L, E)
    best_t = np.take_along_axis(t, best[..., None], axis=3)[..., 0]
    node = np.where(best_t < instance.cloud_latency[:, :, None], best, instance.N)
    served = np.where(valid, node[uu, ll, np.maximum(ex, 0)], -1)
    return _summary(instance, stream, row, served.ravel())


class _Cache:
    """One node's online cache in size units: LRU, or LFU (fewest calls since insertion,
    ties by least recent call) kept in a lazily invalidated heap."""

    def __init__(self, capacity: int, policy: str):
        self.cap, self.policy, self.used = int(capacity), policy, 0
        self.items: OrderedDict = OrderedDict()     # key -> size (LRU order: oldest first)
        self.state: dict = {}                       # LFU: key -> (calls, last tick)
        self.heap: list = []
        self.tick = 0
        self.evictions = 0

    def __contains__(self, key) -> bool:
        return key in self.items

    def _stamp(self, key, calls: int) -> None:
        self.tick += 1
        self.state[key] = (calls, self.tick)
        heapq.heappush(self.heap, (calls, self.tick, key))

    def touch(self, key) -> None:
        if self.policy == "lru":
            self.items.move_to_end(key)
        else:
            self._stamp(key, self.state[key][0] + 1)

    def insert(self, key, size: int) -> None:
        if size > self.cap or key in self.items:
            return
        while self.used + size > self.cap:
            self._evict()
        self.items[key] = size
        self.used += size
        if self.policy == "lfu":
            self._stamp(key, 1)

    def _evict(self) -> None:
        if self.policy == "lru":
            key, size = self.items.popitem(last=False)
        else:
            while True:
                calls, tick, key = heapq.heappop(self.heap)
                if self.state.get(key) == (calls, tick):
                    break
            del self.state[key]
            size = self.items.pop(key)
        self.used -= size
        self.evictions += 1


def _online(instance: Instance, stream: TokenStream, policy: str, miss_penalty: float) -> dict:
    """Replay through one online cache per node (Python loop over calls; O(calls log cache))."""
    N, L = instance.N, instance.L
    caches = [_Cache(q, policy) for q in instance.capacity]
    lat = instance.latency                                   # (U, N, L)
    cloud = instance.cloud_latency
    reach = [[np.flatnonzero(np.isfinite(lat[u, :, l]))[np.argsort(lat[u, np.isfinite(lat[u, :, l]), l],
                                                                   kind="stable")].tolist()
              for l in range(L)] for u in range(instance.U)]
    size = instance.expert_size.tolist()
    row = np.zeros(stream.sets.shape[:2])
    served = np.full(stream.sets.shape, -1, dtype=np.int64)
    misses = 0
    sets = stream.sets.tolist()
    users = stream.user.tolist()
    latl = lat.tolist()
    cloudl = cloud.tolist()
    for i, (u, tok) in enumerate(zip(users, sets)):
        for l, s in enumerate(tok):
            worst, inserts = 0.0, []
            for j, e in enumerate(s):
                if e < 0:
                    continue
                key = (l, e)
                c = cloudl[u][l]
                got = None
                for n in reach[u][l]:
                    if key in caches[n]:
                        got = n
                        break
                if got is None:
                    v, where = c + miss_penalty, N
                    misses += 1
                    if reach[u][l]:
                        inserts.append((reach[u][l][0], key))
                else:
                    caches[got].touch(key)
                    t = latl[u][got][l]
                    v, where = (t, got) if t <= c else (c, N)
                served[i, l, j] = where
                worst = v if v > worst else worst
            row[i, l] = worst
            for n, key in inserts:
                caches[n].insert(key, size[key[0]])
    return _summary(instance, stream, row, served.ravel(), misses=misses,
                    evictions=int(sum(c.evictions for c in caches)))


def simulate(instance: Instance, placement: Placement, *, stream: TokenStream,
             policies: Sequence[str] = POLICIES, miss_penalty: float = 0.0) -> dict:
    """Replay ``stream`` through ``placement`` and each of ``policies`` (see the module docstring).

    Returns
    -------
    dict
        ``{"run": {...}, "placement": {...}, <policy>: {...}, ...}``; each policy
        entry has ``mean``, ``p50``, ``p95``, ``p99``, ``max`` (seconds per
        token), ``hit_rate`` and ``requests`` per node (and ``"cloud"``); online
        policies add ``misses`` and ``evictions``.
    """
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise InputError("--policies", ("", f"unknown policy {unknown[0]!r}; valid: {', '.join(POLICIES)}"))
    if not miss_penalty >= 0:
        raise InputError("--miss-penalty", ("", f"must be >= 0 seconds, got {miss_penalty}"))
    x = placement.x
    if x.shape != (instance.N, instance.L, instance.max_experts):
        raise InputError("placement", ("", f"shape {x.shape} does not match the instance "
                                           f"({instance.N}, {instance.L}, {instance.max_experts})"))
    out: dict = {"run": {"instance": instance.name, "instance_hash": instance.content_hash(),
                         "tokens": int(len(stream.user)), "stream": stream.source,
                         "miss_cost": f"cloud latency c[u,l] + {miss_penalty} s per missed expert; the expert is "
                                      f"then inserted at the user's fastest reachable node",
                         "feasible": bool(placement.is_feasible(instance))},
                 "placement": _static(instance, stream, x)}
    for p in policies:
        if p == "popularity":
            from ..algorithms.baselines import popularity

            out[p] = _static(instance, stream, popularity(instance).placement.x)
        else:
            out[p] = _online(instance, stream, p, miss_penalty)
    return out
