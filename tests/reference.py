"""Test-only references written straight from docs/model.md, loop by loop.

`random_instance_dict` draws small instances that exercise every feature of
the format: per-layer and single-number latencies, unreachable nodes, device
nodes reachable by one user, sets smaller than top-k, unequal sizes.
"""
from __future__ import annotations

import itertools

import numpy as np


def random_instance_dict(seed: int, *, max_layers: int = 3, max_experts: int = 5, max_k: int = 3,
                         max_nodes: int = 3, max_users: int = 3, max_cap: int = 6) -> dict:
    rng = np.random.default_rng(seed)
    L = int(rng.integers(1, max_layers + 1))
    layers = []
    for _ in range(L):
        E = int(rng.integers(1, max_experts + 1))
        K = int(rng.integers(1, min(max_k, E) + 1))
        layers.append({"experts": E, "expert_size": int(rng.integers(1, 4)), "top_k": K})
    N = int(rng.integers(1, max_nodes + 1))
    U = int(rng.integers(1, max_users + 1))
    device_of = {n: int(rng.integers(0, U)) for n in range(N) if rng.random() < 0.25}
    nodes = [{"name": f"n{n}", "capacity": int(rng.integers(0, max_cap + 1))} for n in range(N)]
    w = rng.dirichlet(np.ones(U))
    users = []
    for u in range(U):
        lat = {}
        for n in range(N):
            if n in device_of and device_of[n] != u:
                continue
            if n not in device_of and rng.random() < 0.2:
                continue  # unreachable edge server
            lat[f"n{n}"] = (float(rng.uniform(0.1, 2.0)) if rng.random() < 0.5
                            else [float(v) for v in rng.uniform(0.1, 2.0, size=L)])
        cloud = float(rng.uniform(1.0, 3.0)) if rng.random() < 0.5 else [float(v) for v in rng.uniform(1.0, 3.0, size=L)]
        routing = []
        for lay in layers:
            E, K = lay["experts"], lay["top_k"]
            cands = [c for k in range(1, K + 1) for c in itertools.combinations(range(E), k)]
            m = int(rng.integers(1, min(len(cands), 6) + 1))
            pick = rng.choice(len(cands), size=m, replace=False)
            p = rng.dirichlet(np.ones(m))
            routing.append([{"experts": [int(e) for e in rng.permutation(cands[i])], "p": float(q)}
                            for i, q in zip(pick, p)])
        users.append({"name": f"u{u}", "weight": float(w[u]), "latency": lat, "cloud_latency": cloud,
                      "routing": routing})
    return {"format": "slimcaching-instance/1", "name": f"rand-{seed}", "size_unit": "MiB",
            "layers": layers, "nodes": nodes, "users": users}


def latency_from_definition(d: dict, cache: dict[str, set[tuple[int, int]]]) -> float:
    """T(x) computed literally from the instance JSON and a node -> {(l, e)} cache."""
    L = len(d["layers"])

    def per_layer(v, l):
        return v[l] if isinstance(v, list) else v

    total = 0.0
    for us in d["users"]:
        for l in range(L):
            c = per_layer(us["cloud_latency"], l)
            for st in us["routing"][l]:
                worst = 0.0
                for e in st["experts"]:
                    best = c
                    for node, v in us["latency"].items():
                        if (l, e) in cache.get(node, set()):
                            best = min(best, per_layer(v, l))
                    worst = max(worst, best)
                total += us["weight"] * st["p"] * worst
    return total


def random_cache(d: dict, rng: np.random.Generator, density: float = 0.4) -> dict[str, set[tuple[int, int]]]:
    """A random (not necessarily feasible) cache."""
    return {nd["name"]: {(l, e) for l, lay in enumerate(d["layers"]) for e in range(lay["experts"])
                         if rng.random() < density} for nd in d["nodes"]}


def _maximal_subsets(items: list[tuple[int, int]], size: dict[tuple[int, int], int], cap: int):
    """Every feasible subset of ``items`` that no further item fits into.

    ``T`` can only fall when an element is added (``tau`` is a minimum over a
    larger set), so some optimum is maximal on every node.
    """
    out = []
    for r in range(len(items) + 1):
        for sub in itertools.combinations(items, r):
            used = sum(size[i] for i in sub)
            if used > cap:
                continue
            if all(used + size[i] > cap for i in items if i not in sub):
                out.append(frozenset(sub))
    return out


def brute_force(d: dict) -> float:
    """``min T(x)`` over all feasible placements, by enumeration and the loop-by-loop ``T``."""
    items = [(l, e) for l, lay in enumerate(d["layers"]) for e in range(lay["experts"])]
    size = {(l, e): d["layers"][l]["expert_size"] for l, e in items}
    per_node = [_maximal_subsets(items, size, nd["capacity"]) for nd in d["nodes"]]
    names = [nd["name"] for nd in d["nodes"]]
    best = np.inf
    for combo in itertools.product(*per_node):
        best = min(best, latency_from_definition(d, dict(zip(names, combo))))
    return best


def scale_latencies(d: dict, factor: float) -> dict:
    """A copy of the instance dict with every latency (``t`` and ``c``) multiplied by ``factor``."""
    import copy

    out = copy.deepcopy(d)

    def mul(v):
        return [x * factor for x in v] if isinstance(v, list) else v * factor

    for u in out["users"]:
        u["cloud_latency"] = mul(u["cloud_latency"])
        u["latency"] = {k: mul(v) for k, v in u["latency"].items()}
    return out
