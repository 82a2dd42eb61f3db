"""Router traces -> routing distributions -> instances.

Every source is a small adapter onto one canonical table, one row per
activated set (:class:`Trace`): ``user``, ``token``, ``layer`` and the sorted
``experts`` of that token at that layer.  Adapters:

* ``long``: CSV or Parquet with columns ``user, token, layer, expert``, one row
  per activated expert (llama.cpp-style logs once exploded);
* ``list``: CSV or Parquet with ``user, token, layer, experts``, a list per row
  (Parquet list column, or a CSV string such as ``"[3, 7]"``, ``"3 7"``, ``"3;7"``);
* ``npy``: vLLM-style integer arrays ``[tokens, layers, top_k]``; a file is one
  user (its stem), a folder of files is one user per file;
* ``jsonl``: JSON-lines routing logs with ``layer_idx, token_idx, selected_ids``
  (and the user column when present, else one user).

Sources that keep only per-expert activation counts (Fiddler's
``expert_popularity`` JSON, MoE-Infinity's ``[sequences, layers, experts]``
count arrays) cannot give set distributions.  :func:`read_marginals` and
:func:`instance_from_marginals` fit a Plackett-Luce model to the observed
activation frequencies (:func:`fit_plackett_luce`) and *synthesise* the sets;
the instance's metadata says so (``coactivation: synthesised ...``).

The user of a token is whatever the source groups by (request, task, client):
``user_column`` names it and is recorded in the instance metadata.  Sets are
counted with vectorised group-bys (``np.unique`` over rows); the number of
tokens behind every ``(user, layer)`` distribution is recorded too.

:func:`sample_trace` does the reverse (distributions -> a long-format trace),
for tests and for the shipped sample trace.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ...errors import InputError
from ...fileio import write_text, write_with
from ..catalog import get_architecture
from .stream import DEFAULT_CHUNK_ROWS, Chunk, Counts, count_chunks, iter_rows
from ..generators import assemble
from ..model import Instance

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Trace", "trace_from_frame", "check_trace", "trace_distributions", "instance_from_trace",
           "counts_from_trace", "instances_from_counts", "sample_trace", "write_trace", "FORMATS"]

FORMATS = ("long", "list", "npy", "exflow", "jsonl", "megatron", "flame", "llamacpp", "sglang")


@dataclass(frozen=True)
class Trace:
    """The canonical router trace: one row per ``(user, token, layer)`` activated set.

    Attributes
    ----------
    user_names : tuple of str (U,)   labels of the users, in order of first appearance.
    user : int64 (R,)                index into ``user_names``.
    token : int64 (R,)
    layer : int64 (R,)               0-based MoE layer.
    experts : int64 (R, Kmax)        sorted expert ids padded with ``-1``.
    row : int64 (R,)                 first source row of the set (for error messages).
    source, fmt, user_column : str   where it came from and how it was read.
    """

    user_names: tuple
    user: np.ndarray
    token: np.ndarray
    layer: np.ndarray
    experts: np.ndarray
    row: np.ndarray
    source: str
    fmt: str
    user_column: str

    @property
    def n_sets(self) -> int:
        return int(self.user.shape[0])

    @property
    def set_sizes(self) -> np.ndarray:
        return (self.experts >= 0).sum(axis=1)


# ------------------------------------------------------------ the canonical table
def _columns_error(file: str, have: Sequence[str], user_column: str) -> InputError:
    return InputError(file, ("$.columns", f"a trace needs columns {user_column}, token, layer and expert "
                                          f"(one row per activated expert) or experts (a list per row); "
                                          f"found {', '.join(map(str, have)) or 'none'}"))


def _int_column(file: str, df: pd.DataFrame, col: str) -> np.ndarray:
    from .source import int_array

    return int_array(file, df[col].to_numpy(), col, df.index.to_numpy())


def trace_from_frame(df: pd.DataFrame, *, file: str = "<trace>", user_column: str = "user",
                     layer_base: int = 0, fmt: str = "auto") -> Trace:
    """Canonicalise a long or list table (see the module docstring).

    Row numbers in error messages are 0-based data rows of the source.
    """
    import pandas as pd  # here, not at the top: commands that read no table do not pay for it

    if len(df) == 0:
        raise InputError(file, ("", "empty trace: no rows"))
    cols = list(df.columns)
    if fmt == "auto":
        fmt = "list" if "experts" in cols else "long"
    ecol = "experts" if fmt == "list" else "expert"
    missing = [c for c in (user_column, "token", "layer", ecol) if c not in cols]
    if missing:
        raise _columns_error(file, cols, user_column)
    df = df.reset_index(drop=True)
    if fmt == "list":
        ex = df["experts"]
        if isinstance(ex.iloc[0], str):
            # CSV: "[3, 7]", "3 7" or "3;7" -> lists, with pandas' string methods (no Python loop)
            ex = ex.astype(str).str.strip().str.strip("[](){}").str.strip().str.split(r"[,;\s]+", regex=True)
        long = df[[user_column, "token", "layer"]].assign(expert=ex).explode("expert")
        e = long["expert"]
        bad = pd.to_numeric(e, errors="coerce").isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            v = e.iloc[i]
            if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v):
                raise InputError(file, (f"$[{long.index[i]}].experts",
                                        "a token must activate at least one expert, got an empty list"))
    else:
        long = df[[user_column, "token", "layer", "expert"]]
    token = _int_column(file, long, "token")
    layer = _int_column(file, long, "layer") - int(layer_base)
    expert = _int_column(file, long, "expert")
    src_row = long.index.to_numpy(dtype=np.int64)
    ucol = long[user_column]
    blank = (ucol.isna() | ucol.astype(str).str.strip().eq("")).to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputError(file, (f"$[{src_row[i]}].{user_column}", f"empty {user_column} cell: every row needs a user"))
    ucodes, unames = pd.factorize(ucol, sort=False)
    names = tuple(str(x) for x in unames)
    return _group(file, ucodes.astype(np.int64), names, token, layer, expert, src_row, fmt, user_column)


def _group(file: str, user: np.ndarray, user_names: tuple, token: np.ndarray, layer: np.ndarray,
           expert: np.ndarray, src_row: np.ndarray, fmt: str, user_column: str) -> Trace:
    """Group activated experts into sets: one vectorised sort, no loop over tokens."""
    order = np.lexsort((expert, layer, token, user))
    u, t, l, e, r = user[order], token[order], layer[order], expert[order], src_row[order]
    new = np.ones(len(u), dtype=bool)
    new[1:] = (u[1:] != u[:-1]) | (t[1:] != t[:-1]) | (l[1:] != l[:-1])
    start = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    rank = np.arange(len(u)) - start[gid]
    dup = ~new & np.r_[False, e[1:] == e[:-1]]
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise InputError(file, (f"$[{r[i]}].expert", f"expert {e[i]} repeated within one token "
                                                     f"(user {user_names[u[i]]!r}, token {t[i]}, layer {l[i]})"))
    kmax = int(rank.max()) + 1
    sets = np.full((len(start), kmax), -1, dtype=np.int64)
    sets[gid, rank] = e
    first_row = np.minimum.reduceat(r, start)
    return Trace(user_names=tuple(str(x) for x in user_names), user=u[start], token=t[start], layer=l[start],
                 experts=sets, row=first_row, source=file, fmt=fmt, user_column=user_column)


# --------------------------------------------------------------- checking
def _count(n: int) -> str:
    return f"{n} set{'s' if n != 1 else ''} in the trace"


def check_trace(trace: Trace, *, layers: int, experts: int, top_k: int, model: str = "the model") -> None:
    """Every layer, expert id and set size must fit the architecture.

    Raises one :class:`InputError` listing the first offending row of each
    kind (and how many rows break it).
    """
    problems = []
    bad = (trace.layer < 0) | (trace.layer >= layers)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problems.append((f"$[{trace.row[i]}].layer",
                         f"unknown layer {trace.layer[i]}: {model} has {layers} MoE layers (0..{layers - 1})"
                         f" ({_count(int(bad.sum()))})"))
    ex = trace.experts
    badx = ((ex >= experts) | ((ex < 0) & (ex != -1))).any(axis=1)
    badx |= (ex[:, 0] < 0)
    if badx.any():
        i = int(np.flatnonzero(badx)[0])
        v = ex[i][(ex[i] >= experts) | (ex[i] < 0)]
        problems.append((f"$[{trace.row[i]}].expert",
                         f"expert {int(v[0]) if len(v) else -1} out of range: {model} has {experts} experts "
                         f"per layer (0..{experts - 1}) ({_count(int(badx.sum()))})"))
    sizes = trace.set_sizes
    badk = sizes > top_k
    if badk.any():
        i = int(np.flatnonzero(badk)[0])
        problems.append((f"$[{trace.row[i]}].expert",
                         f"token {trace.token[i]} of user {trace.user_names[trace.user[i]]!r} activates "
                         f"{int(sizes[i])} experts at layer {trace.layer[i]}, more than top-k = {top_k} "
                         f"({_count(int(badk.sum()))})"))
    if problems:
        raise InputError(trace.source, problems)


def trace_distributions(trace: Trace) -> tuple[np.ndarray, list[list[tuple[np.ndarray, np.ndarray]]], np.ndarray]:
    """Empirical set distributions of every ``(user, layer)`` present.

    Returns ``layers int (L',)`` (the distinct trace layers, sorted; instance
    layer ``i`` is model layer ``layers[i]``), ``routing[u][i] = (sets, p)`` and
    ``tokens int64 (U, L')``, the number of tokens behind each distribution.

    Raises
    ------
    InputError
        When a user has no tokens at one of the trace's layers.
    """
    layers = np.unique(trace.layer)
    li = np.searchsorted(layers, trace.layer)
    U, L = len(trace.user_names), len(layers)
    key = np.concatenate([trace.user[:, None], li[:, None], trace.experts], axis=1)
    rows, counts = np.unique(key, axis=0, return_counts=True)     # sorted by (user, layer, set)
    ul = rows[:, 0] * L + rows[:, 1]
    tokens = np.bincount(ul, weights=counts, minlength=U * L).astype(np.int64).reshape(U, L)
    if (tokens == 0).any():
        u, l = map(int, np.argwhere(tokens == 0)[0])
        raise InputError(trace.source, ("$", f"user {trace.user_names[u]!r} has no tokens at layer "
                                             f"{int(layers[l])}; every user needs every layer of the trace"))
    bounds = np.searchsorted(ul, np.arange(U * L + 1))
    routing = []
    for u in range(U):
        per = []
        for l in range(L):
            a, b = bounds[u * L + l], bounds[u * L + l + 1]
            c = counts[a:b].astype(float)
            per.append((rows[a:b, 2:], c / c.sum()))
        routing.append(per)
    return layers, routing, tokens


def counts_from_trace(trace: Trace, *, layers: int, experts: int, top_k: int, model: str = "the model",
                      chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Counts:
    """:func:`.stream.count_chunks` over an in-memory :class:`Trace` (its layers already 0-based)."""
    chunks = (Chunk(user=trace.user[a:b], token=trace.token[a:b], layer=trace.layer[a:b],
                    experts=trace.experts[a:b], row=trace.row[a:b]) for a, b in iter_rows(trace.n_sets, chunk_rows))
    return count_chunks(chunks, user_names=lambda: trace.user_names, file=trace.source, layers=layers,
                        experts=experts, top_k=top_k, model=model,
                        info={"source": os.path.basename(trace.source), "format": trace.fmt,
                              "user_column": trace.user_column})


def instance_from_trace(trace: Trace, *, model: str, network: str = "wifi-rtx", nodes: int = 4,
                        capacity: Any = None, device_capacity: Any = None, seed: int = 0,
                        precision: str = "bf16", devices: bool | None = None, name: str | None = None,
                        top_k: int | None = None) -> Instance:
    """An instance whose routing statistics are the trace's empirical set distributions.

    Layers are the distinct trace layers (mapped to the model's MoE layers in
    ``metadata.trace.model_layers``); users are the trace's users, weighted by
    their share of tokens; sizes, nodes and latencies come from the model and
    the network preset exactly as in :func:`.suites.model_instance`.
    """
    arch = get_architecture(model)
    K = arch.top_k if top_k is None else int(top_k)
    check_trace(trace, layers=arch.moe_layers, experts=arch.routed_experts, top_k=K, model=arch.name)
    counts = counts_from_trace(trace, layers=arch.moe_layers, experts=arch.routed_experts, top_k=K, model=arch.name)
    return instances_from_counts(counts, model=model, network=network, nodes=nodes, capacity=capacity,
                                 device_capacity=device_capacity, seed=seed, precision=precision, devices=devices,
                                 name=name, top_k=top_k)[0]


def _physical(arch, user_names, *, network, nodes, capacity, precision, devices, seed, device_capacity):
    from ..suites import physical_model

    return physical_model(arch, network=network, nodes=nodes, user_names=user_names, capacity=capacity,
                          precision=precision, devices=devices, rng=np.random.default_rng(seed),
                          device_capacity=device_capacity)


def instances_from_counts(counts: Counts, *, model: str, network: str = "wifi-rtx", nodes: int = 4,
                          capacity: Any = None, device_capacity: Any = None, seed: int = 0, precision: str = "bf16",
                          devices: bool | None = None, name: str | None = None, top_k: int | None = None,
                          max_sets: int | None = None, extra: dict | None = None) -> list[Instance]:
    """One instance per part of ``counts`` (one, or fit and test), all over one sampled network.

    The network is sampled once for every user of the trace (seeded), so the
    instances of a split share nodes, capacities and each user's links; each
    keeps the users with tokens in its part, weighted by their token share.

    Raises
    ------
    InputError
        The trace's largest set is smaller than the model's Top-K (a top-1
        trace for a top-2 model) and ``top_k`` does not say so; a user without
        tokens at one of the layers; more than ``max_sets`` sets.
    """
    arch = get_architecture(model)
    src = counts.info.get("source", "<trace>")
    kmax = counts.max_set_size
    if top_k is None and kmax < arch.top_k:
        raise InputError(src, ("", f"the trace activates at most {kmax} expert(s) per token but {arch.name} routes "
                                   f"top-{arch.top_k}; pass --top-k {kmax} to model a top-{kmax} variant, or import "
                                   f"the trace with the model it came from"))
    if top_k is not None and not kmax <= int(top_k) <= arch.top_k:
        raise InputError("--top-k", ("", f"must be between the trace's largest set ({kmax}) and "
                                         f"{arch.name}'s top-k ({arch.top_k}), got {top_k}"))
    K = arch.top_k if top_k is None else int(top_k)
    total = counts.distinct
    if max_sets is not None and total > max_sets:
        raise InputError(src, ("", f"{total:,} distinct (user, layer, set) rows, more than --max-sets {max_sets:,} "
                                   f"({counts.ratio:.2f} tokens per distinct set): keep the head with --top-mass or "
                                   f"--min-count (the tail becomes a documented remainder), or raise --max-sets"))
    layers = counts.layers
    L = len(layers)
    sub = arch.truncated(layers=L, top_k=K)
    user_names = [f"user-{u}" if not str(u).strip() else str(u) for u in counts.user_names]
    phys = _physical(sub, user_names, network=network, nodes=nodes, capacity=capacity, precision=precision,
                     devices=devices, seed=seed, device_capacity=device_capacity)
    out = []
    for p, part in enumerate(counts.parts):
        tok = counts.tokens[p]
        keep = np.flatnonzero(tok.sum(axis=1) > 0)
        if len(keep) == 0:
            raise InputError(src, ("", f"the {part} part of the split has no tokens"))
        gaps = np.argwhere(tok[keep] == 0)
        if len(gaps):
            u, l = keep[gaps[0][0]], gaps[0][1]
            where = f" in the {part} part" if len(counts.parts) > 1 else ""
            raise InputError(src, ("$", f"user {counts.user_names[u]!r} has no tokens at layer {int(layers[l])}"
                                        f"{where}; every user needs every layer of the trace"))
        routing = [[(counts.sets[counts.index(p, u, l)], counts.counts[counts.index(p, u, l)])
                    for l in range(L)] for u in keep]
        share = tok[keep].mean(axis=1)
        meta = {
            "generator": "slimcaching.instances.traces.instances_from_counts",
            "params": {"model": arch.name, "network": network, "nodes": nodes, "capacity": capacity,
                       "device_capacity": device_capacity, "seed": seed, "precision": precision, "devices": devices,
                       "top_k": top_k},
            "architecture": {"name": arch.name, "source": arch.hf_config},
            "precision": phys.precision,
            "network": phys.network.summary(),
            "trace": {**{k: v for k, v in counts.info.items()}, "model_layers": layers.tolist(),
                      "sets_in_trace": counts.rows, "max_set_size": kmax,
                      "distinct_sets": total, "tokens_per_distinct_set": round(counts.ratio, 4)},
            "coactivation": "observed (empirical set frequencies of the trace)",
            "sampled_tokens_per_distribution": tok[keep].tolist(),
            **(extra or {}),
        }
        if len(counts.parts) > 1:
            meta["split"] = {**meta.get("split", {}), "part": part}
        stem = "trace" if src.startswith("<") else Path(src).stem
        nm = name or f"{stem}-{arch.name.lower()}-{network}-s{seed}"
        if len(counts.parts) > 1:
            nm = f"{nm}-{part}"
        inst = assemble(name=nm, experts=np.full(L, arch.routed_experts), expert_size=phys.sizes,
                            top_k=np.full(L, K), node_names=phys.node_names, capacity=phys.capacity,
                            user_names=[user_names[u] for u in keep], weight=share / share.sum(),
                            latency=phys.latency[keep], cloud_latency=phys.cloud_latency[keep], routing=routing,
                            size_unit=phys.size_unit, metadata=meta)
        if "truncation" in meta:
            inst.metadata["truncation"] = _truncation_record(inst, meta["truncation"], p, keep)
        out.append(inst)
    return out


def _truncation_record(inst: Instance, record: dict, part: int, keep: np.ndarray) -> dict:
    """The truncation record of one instance: its tail masses and the bound of :func:`.stream.truncate`,
    ``sum_u w_u sum_l tau[u,l] (c[u,l] - tmin[u,l])`` on ``|T_trace(x) - T_truncated(x)|`` for every ``x``."""
    tau = np.asarray(record["tail_mass"], dtype=float)[part][keep]
    tmin = np.minimum(inst.cloud_latency, inst.latency.min(axis=1))
    bound = float(inst.weight @ (tau * (inst.cloud_latency - tmin)).sum(axis=1))
    return {**record, "tail_mass": tau.round(6).tolist(), "latency_error_bound": bound}


# ---------------------------------------------------------------- sampling
def sample_trace(instance: Instance, tokens: int | Sequence[int], rng: np.random.Generator, *,
                 layer_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """A long-format trace (``user, token, layer, expert``) drawn from an instance's routing.

    Each user's ``tokens`` tokens draw one set per layer, independently, from
    ``p[u,l,.]``; vectorised per ``(u, l)``.  ``layer_ids`` relabels the layers
    (e.g. model layer ids); default ``0..L-1``.
    """
    import pandas as pd

    U, L = instance.U, instance.L
    T = np.broadcast_to(np.asarray(tokens, dtype=np.int64), (U,))
    lid = np.arange(L) if layer_ids is None else np.asarray(layer_ids, dtype=np.int64)
    frames = []
    for u in range(U):
        for l in range(L):
            sl = instance.sets_of(u, l)
            sets = instance.set_experts[sl]
            idx = rng.choice(len(sets), size=int(T[u]), p=instance.set_prob[sl] / instance.set_prob[sl].sum())
            drawn = sets[idx]                                   # (T, Kmax)
            tok = np.broadcast_to(np.arange(int(T[u]))[:, None], drawn.shape)
            keep = drawn >= 0
            frames.append(pd.DataFrame({"user": instance.user_names[u], "token": tok[keep],
                                        "layer": int(lid[l]), "expert": drawn[keep]}))
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["user", "token", "layer", "expert"], kind="stable").reset_index(drop=True)


def write_trace(df: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a trace table as CSV (``\\n`` line ends) or Parquet, by extension."""
    path = str(path)
    if path.lower().endswith((".parquet", ".pq")):
        write_with(path, lambda name: df.to_parquet(name, index=False))
    else:
        write_text(df.to_csv(index=False, lineterminator="\n"), path)
