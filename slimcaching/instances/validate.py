"""Validation of instance and placement JSON: the one place input is checked.

Each function walks a decoded JSON object, collects every violation as a
``(json_path, rule)`` pair and raises one :class:`~slimcaching.errors.InputError`
naming the file; on success it returns normalised arrays / model objects.
The rules are those of ``docs/model.md`` section 3; the collector is
:class:`slimcaching.validation.Collector`, shared with the MoE² family.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from ..validation import Collector, as_float, brief, is_int, is_num
from .model import Instance, Placement

__all__ = ["instance_from_dict", "placement_from_dict", "INSTANCE_FORMAT", "PLACEMENT_FORMAT", "SUM_TOL", "LIMITS"]

INSTANCE_FORMAT = "slimcaching-instance/1"
PLACEMENT_FORMAT = "slimcaching-placement/1"
SUM_TOL = 1e-6

#: Sanity caps of an instance (``docs/model.md`` section 3).  Far above any real
#: MoE model (DeepSeek-V3: 256 experts per layer, 58 layers), they keep a typo
#: such as ``"experts": 1000000000`` from passing validation and then exhausting
#: memory in the evaluator, whose dense arrays have ``U*L*max(E)``,
#: ``N*L*max(E)`` and ``U*N*L`` cells.
LIMITS: dict[str, int] = {
    "experts": 2**16,        # routed experts of one layer
    "size": 2**53,           # expert_size and capacity: exact as float64 MILP coefficients
    "model_size": 2**62,     # sum_l E_l s_l: every storage sum is exact in int64
    "cells": 2**26,          # each of U*L*max(E), N*L*max(E), U*N*L
}


def _positive_latency(c: Collector, v: Any, path: str, L: int) -> list[float] | None:
    """A latency value: one positive finite number or a list of L of them."""
    if is_num(v):
        vals = [as_float(v)]
        paths = [path]
    elif isinstance(v, list):
        if L >= 0 and len(v) != L:
            c.add(path, f"per-layer latency list must have {L} entries (one per layer), got {len(v)}")
            return None
        vals, paths = [], []
        for i, x in enumerate(v):
            if not is_num(x):
                c.add(f"{path}[{i}]", f"latency must be a number, got {type(x).__name__}")
                return None
            vals.append(as_float(x))
            paths.append(f"{path}[{i}]")
    else:
        c.add(path, f"latency must be a number or a list of {L} numbers, got {type(v).__name__}")
        return None
    ok = True
    for x, p in zip(vals, paths):
        if not math.isfinite(x) or x <= 0:
            c.add(p, f"latency must be positive and finite, got {brief(x)}")
            ok = False
    if not ok:
        return None
    return vals * L if len(vals) == 1 else vals


def _check_size(c: Collector, E: list[int], S: list[int], U: int, N: int) -> None:
    """The sanity caps of :data:`LIMITS` on the whole instance (exact integer arithmetic)."""
    L = len(E)
    model = sum(e * s for e, s in zip(E, S))
    if model > LIMITS["model_size"]:
        c.add("$.layers", f"total model size sum(experts * expert_size) = {model} exceeds {LIMITS['model_size']} "
                          f"(2^62): use a coarser size_unit")
    emax = max(E, default=0)
    for what, cells in (("users x layers x experts", U * L * emax), ("nodes x layers x experts", N * L * emax),
                        ("users x nodes x layers", U * N * L)):
        if cells > LIMITS["cells"]:
            c.add("$", f"instance too large: {what} = {cells} exceeds the limit of {LIMITS['cells']} "
                       f"(U={U}, N={N}, L={L}, max experts={emax})")


def _check_finite_latency(c: Collector, cloud: np.ndarray) -> None:
    """``T(empty) = sum_u w_u sum_l c[u,l]`` must be a finite float, so every ``T(x) <= T(empty)`` is."""
    with np.errstate(over="ignore"):
        per_user = cloud.sum(axis=1)
    for u in np.flatnonzero(~np.isfinite(per_user)):
        c.add(f"$.users[{u}].cloud_latency", "cloud latencies summed over the layers overflow a float "
                                             "(T(empty) must be finite): use a larger latency unit")


def instance_from_dict(data: Any, file: str = "<input>") -> Instance:
    """Validate a decoded ``slimcaching-instance/1`` object and build the :class:`Instance`.

    Raises
    ------
    InputError
        Listing every violation with its JSON path.
    """
    c = Collector()
    if not isinstance(data, dict):
        raise InputError(file, ("$", f"top level must be a JSON object, got {type(data).__name__}"))
    fmt = data.get("format")
    if fmt != INSTANCE_FORMAT:
        raise InputError(file, ("$.format", f"unknown format tag {fmt!r}, expected {INSTANCE_FORMAT!r}"))
    name = c.field(data, "name", "$", str, "a string")
    size_unit = data.get("size_unit", "MiB")
    if not isinstance(size_unit, str):
        c.add("$.size_unit", "must be a string")
    layers = c.field(data, "layers", "$", list, "a list of layer objects")
    nodes = c.field(data, "nodes", "$", list, "a list of node objects")
    users = c.field(data, "users", "$", list, "a list of user objects")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        c.add("$.metadata", "must be an object")
        metadata = {}
    if c.problems:
        raise InputError(file, c.problems)

    # ---- layers
    E, S, K = [], [], []
    if not layers:
        c.add("$.layers", "must list at least one layer")
    for i, lay in enumerate(layers):
        p = f"$.layers[{i}]"
        if not isinstance(lay, dict):
            c.add(p, "must be an object")
            E.append(1), S.append(1), K.append(1)
            continue
        vals = []
        for key, high in (("experts", LIMITS["experts"]), ("expert_size", LIMITS["size"]), ("top_k", LIMITS["experts"])):
            if key not in lay:
                c.add(f"{p}.{key}", f"missing required field '{key}'")
                vals.append(1)
                continue
            v = lay[key]
            if not is_int(v) or not 0 < v <= high:
                c.add(f"{p}.{key}", f"must be a positive integer at most {high}, got {brief(v)}")
                vals.append(1)
            else:
                vals.append(int(v))
        if vals[2] > vals[0]:
            c.add(f"{p}.top_k", f"top_k ({vals[2]}) cannot exceed the number of experts ({vals[0]})")
        E.append(vals[0]), S.append(vals[1]), K.append(vals[2])
    L = len(E)

    # ---- nodes
    node_names: list[str] = []
    caps: list[int] = []
    seen: set[str] = set()
    for i, nd in enumerate(nodes):
        p = f"$.nodes[{i}]"
        if not isinstance(nd, dict):
            c.add(p, "must be an object")
            continue
        nm = c.field(nd, "name", p, str, "a string")
        cap = nd.get("capacity")
        if "capacity" not in nd:
            c.add(f"{p}.capacity", "missing required field 'capacity'")
            cap = 0
        elif not is_int(cap) or not 0 <= cap <= LIMITS["size"]:
            c.add(f"{p}.capacity", f"must be a non-negative integer at most {LIMITS['size']}, got {brief(cap)}")
            cap = 0
        if nm is not None:
            if nm in seen:
                c.add(f"{p}.name", f"duplicate node name {nm!r}")
            seen.add(nm)
        node_names.append(nm if nm is not None else f"#{i}")
        caps.append(int(cap))
    N = len(node_names)
    node_index = {n: i for i, n in enumerate(node_names)}

    # ---- users
    U = len(users)
    if U == 0:
        c.add("$.users", "must list at least one user")
    before = len(c.problems)
    _check_size(c, E, S, U, N)
    if len(c.problems) > before:  # the arrays below are sized by these numbers
        raise InputError(file, c.problems)
    weights = np.zeros(U)
    lat = np.full((U, N, L), np.inf)
    cloud = np.ones((U, L))
    rows: list[list[int]] = []
    probs: list[float] = []
    s_user: list[int] = []
    s_layer: list[int] = []
    counts = np.zeros(U * L + 1, dtype=np.int64)
    for u, us in enumerate(users):
        p = f"$.users[{u}]"
        if not isinstance(us, dict):
            c.add(p, "must be an object")
            continue
        c.field(us, "name", p, str, "a string")
        w = us.get("weight")
        if "weight" not in us:
            c.add(f"{p}.weight", "missing required field 'weight'")
        elif not is_num(w) or not math.isfinite(as_float(w)) or w <= 0:
            c.add(f"{p}.weight", f"must be a positive number, got {brief(w)}")
        else:
            weights[u] = float(w)
        latd = c.field(us, "latency", p, dict, "an object mapping node names to latencies")
        if latd is not None:
            for key, v in latd.items():
                if key not in node_index:
                    c.add(f"{p}.latency.{key}", f"latency key {key!r} is not a node name")
                    continue
                vals = _positive_latency(c, v, f"{p}.latency.{key}", L)
                if vals is not None:
                    lat[u, node_index[key], :] = vals
        if "cloud_latency" not in us:
            c.add(f"{p}.cloud_latency", "missing required field 'cloud_latency'")
        else:
            vals = _positive_latency(c, us["cloud_latency"], f"{p}.cloud_latency", L)
            if vals is not None:
                cloud[u, :] = vals
        routing = c.field(us, "routing", p, list, f"a list of {L} per-layer lists")
        if routing is None:
            continue
        if len(routing) != L:
            c.add(f"{p}.routing", f"must have one list per layer ({L}), got {len(routing)}")
            continue
        for l, dist in enumerate(routing):
            pl = f"{p}.routing[{l}]"
            if not isinstance(dist, list) or not dist:
                c.add(pl, "must be a non-empty list of {experts, p} objects")
                continue
            total = 0.0
            seen_sets: set[tuple[int, ...]] = set()
            for j, st in enumerate(dist):
                ps = f"{pl}[{j}]"
                if not isinstance(st, dict):
                    c.add(ps, "must be an object with 'experts' and 'p'")
                    continue
                ex = c.field(st, "experts", ps, list, "a list of expert ids")
                pr = st.get("p")
                if "p" not in st:
                    c.add(f"{ps}.p", "missing required field 'p'")
                    pr = None
                elif not is_num(pr) or not math.isfinite(as_float(pr)) or pr <= 0:
                    c.add(f"{ps}.p", f"probability must be > 0 and finite, got {brief(pr)}")
                    pr = None
                if ex is None:
                    continue
                if len(ex) == 0:
                    c.add(f"{ps}.experts", "activated set must not be empty")
                    continue
                if len(ex) > K[l]:
                    c.add(f"{ps}.experts", f"set of {len(ex)} experts exceeds top_k = {K[l]} of layer {l}")
                bad = False
                for k, e in enumerate(ex):
                    if not is_int(e):
                        c.add(f"{ps}.experts[{k}]", f"expert id must be an integer, got {brief(e)}")
                        bad = True
                    elif not 0 <= e < E[l]:
                        c.add(f"{ps}.experts[{k}]", f"expert id {brief(e)} out of range 0..{E[l] - 1} for layer {l}")
                        bad = True
                if bad:
                    continue
                ids = [int(e) for e in ex]
                if len(set(ids)) != len(ids):
                    c.add(f"{ps}.experts", f"repeated expert in set {ids}")
                    continue
                key = tuple(sorted(ids))
                if key in seen_sets:
                    c.add(f"{ps}.experts", f"set {list(key)} listed twice for this user and layer")
                    continue
                seen_sets.add(key)
                if pr is None:
                    continue
                total += float(pr)
                rows.append(ids)
                probs.append(float(pr))
                s_user.append(u)
                s_layer.append(l)
                counts[u * L + l + 1] += 1
            if abs(total - 1.0) > SUM_TOL and not any(pp.startswith(pl) for pp, _ in c.problems):
                c.add(pl, f"probabilities must sum to 1 within {SUM_TOL:g}, got {total:.9g}")
    if U and not c.problems and abs(weights.sum() - 1.0) > SUM_TOL:
        c.add("$.users", f"user weights must sum to 1 within {SUM_TOL:g}, got {weights.sum():.9g}")
    if not c.problems:
        _check_finite_latency(c, cloud)
    if c.problems:
        raise InputError(file, c.problems)

    kmax = max((len(r) for r in rows), default=1)
    set_experts = np.full((len(rows), kmax), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        set_experts[i, : len(r)] = r
    # rows were appended in (u, l) order, so a cumulative sum gives the offsets
    offsets = np.cumsum(counts)
    return Instance(
        name=name, size_unit=size_unit, experts=E, expert_size=S, top_k=K,
        node_names=node_names, capacity=caps, user_names=[us["name"] for us in users],
        weight=weights, latency=lat, cloud_latency=cloud, set_experts=set_experts,
        set_prob=probs, set_user=s_user, set_layer=s_layer, offsets=offsets,
        metadata=metadata,
    )


def placement_from_dict(data: Any, instance: Instance, file: str = "<input>") -> tuple[Placement, dict]:
    """Validate a ``slimcaching-placement/1`` object against ``instance``.

    Returns the :class:`Placement` and the remaining (informational) fields.
    Capacity is *not* checked here: an over-capacity placement is valid input
    whose evaluation reports ``feasible: false``.
    """
    c = Collector()
    if not isinstance(data, dict):
        raise InputError(file, ("$", f"top level must be a JSON object, got {type(data).__name__}"))
    fmt = data.get("format")
    if fmt != PLACEMENT_FORMAT:
        raise InputError(file, ("$.format", f"unknown format tag {fmt!r}, expected {PLACEMENT_FORMAT!r}"))
    cache = c.field(data, "cache", "$", dict, "an object mapping node names to [layer, expert] pairs")
    if c.problems:
        raise InputError(file, c.problems)
    index = {n: i for i, n in enumerate(instance.node_names)}
    clean: dict[str, list[tuple[int, int]]] = {}
    for node, pairs in cache.items():
        p = f"$.cache.{node}"
        if node not in index:
            c.add(p, f"unknown node {node!r} (nodes: {', '.join(instance.node_names)})")
            continue
        if not isinstance(pairs, list):
            c.add(p, "must be a list of [layer, expert] pairs")
            continue
        seen: set[tuple[int, int]] = set()
        good = []
        for i, pair in enumerate(pairs):
            pp = f"{p}[{i}]"
            if not (isinstance(pair, list) and len(pair) == 2 and all(is_int(v) for v in pair)):
                c.add(pp, f"must be a [layer, expert] pair of integers, got {pair!r}")
                continue
            l, e = int(pair[0]), int(pair[1])
            if not 0 <= l < instance.L:
                c.add(pp, f"layer {l} out of range 0..{instance.L - 1}")
                continue
            if not 0 <= e < instance.experts[l]:
                c.add(pp, f"expert {e} out of range 0..{instance.experts[l] - 1} for layer {l}")
                continue
            if (l, e) in seen:
                c.add(pp, f"duplicate cache entry [{l}, {e}] on node {node!r}")
                continue
            seen.add((l, e))
            good.append((l, e))
        clean[node] = good
    if c.problems:
        raise InputError(file, c.problems)
    extra = {k: v for k, v in data.items() if k not in ("format", "cache")}
    return Placement.from_cache(instance, clean), extra
