"""Marginal-only sources: Fiddler ``expert_popularity`` JSON and MoE-Infinity count arrays.

They keep per-expert activation counts only, so they cannot give set
distributions: :func:`instance_from_marginals` fits a Plackett-Luce model to
the observed activation frequencies (:func:`fit_plackett_luce`) and
*synthesises* the sets; the instance's metadata says so.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ...fileio import read_json, read_npy
from ..catalog import get_architecture
from ..generators import assemble
from ..model import Instance

__all__ = ["Marginals", "read_marginals", "fit_plackett_luce", "instance_from_marginals", "MARGINAL_FORMATS"]


MARGINAL_FORMATS = ("fiddler", "counts-npy", "sglang-stat")


@dataclass(frozen=True)
class Marginals:
    """Per-expert activation counts, the only thing marginal-only sources keep.

    Attributes
    ----------
    user_names : tuple of str (U,)     one per file (its stem).
    counts : float64 (U, L, E)         tokens that activated expert ``e`` at layer ``l``.
    tokens : float64 (U, L)            tokens behind each layer's counts.
    source, fmt : str
    extra : dict                       format facts for the metadata.
    """

    user_names: tuple
    counts: np.ndarray
    tokens: np.ndarray
    source: str
    fmt: str
    extra: dict = field(default_factory=dict)


def _files(path: str, ext: str) -> list[Path]:
    p = Path(path)
    if not p.exists():
        raise InputError(path, ("", "file not found"))
    files = sorted(p.glob(f"*{ext}")) if p.is_dir() else [p]
    if not files:
        raise InputError(path, ("", f"empty trace: no {ext} files"))
    return files


def read_marginals(path: str | os.PathLike, *, fmt: str = "fiddler", top_k: int | None = None,
                   layer_base: int = 0) -> Marginals:
    """Read activation counts: a file per user, or a folder of them.

    ``fiddler``: JSON ``{"total_input_tokens": T, "expert_popularity": [[count] * E] * L}``
    (Fiddler's ``benchmarks/popularity.py``).  Fiddler counts every routed
    token, prompt and generated, but its ``total_input_tokens`` is the number
    of whitespace-separated *words* of the prompts, so the tokens of a layer
    are taken from the counts: ``sum_e count / top_k``; ``T`` is kept in the
    metadata as ``words``.
    ``counts-npy``: MoE-Infinity's trace collection, an array ``[sequences,
    layers, experts]`` of activation counts (``np.save`` of its
    ``trace_collection``; float or integer), summed over sequences; all-zero
    sequences (unused slots of the collection) are skipped.
    ``sglang-stat``: SGLang ``stat``-mode dumps, ``logical_count`` summed over steps.

    The tokens of a layer are its total count divided by ``top_k`` (each token
    activates ``top_k`` experts), so ``top_k`` is required; ``layer_base``
    drops that many leading (dense) layers.
    """
    path = str(path)
    if fmt not in MARGINAL_FORMATS:
        raise InputError("--format", ("", f"unknown marginal format {fmt!r}; valid: {', '.join(MARGINAL_FORMATS)}"))
    if not top_k:
        raise InputError(path, ("", f"{fmt} needs the model's top-k to turn counts into tokens"))
    counts, names, extra = [], [], {}
    if fmt == "fiddler":
        words = []
        for f in _files(path, ".json"):
            d = read_json(f)  # strict and size-capped, one-line errors
            if not isinstance(d, dict) or "expert_popularity" not in d or "total_input_tokens" not in d:
                raise InputError(str(f), ("$", "a Fiddler popularity file needs total_input_tokens and "
                                               "expert_popularity (layers x experts counts)"))
            try:
                c = np.asarray(d["expert_popularity"], dtype=float)
            except (TypeError, ValueError, OverflowError):
                raise InputError(str(f), ("$.expert_popularity", "must be a list of lists of counts")) from None
            if not (np.isfinite(c).all() and (c >= 0).all()):
                raise InputError(str(f), ("$", "counts and total_input_tokens must be finite and non-negative"))
            if c.ndim != 2:
                raise InputError(str(f), ("$.expert_popularity", f"must be layers x experts, got shape {c.shape}"))
            counts.append(c)
            names.append(f.stem)
            words.append(d["total_input_tokens"])
        extra["words"] = words
        extra["words_rule"] = ("Fiddler's total_input_tokens counts whitespace-separated words of the prompts, "
                               "not model tokens; tokens per layer = sum of counts / top-k")
    elif fmt == "sglang-stat":
        from .sglang import sglang_counts

        names, counts = sglang_counts(path)
    else:
        for f in _files(path, ".npy"):
            a = read_npy(f, mmap=True)  # header checked against the file size first
            if a.ndim != 3:
                raise InputError(str(f), ("", f"expected counts [sequences, layers, experts], got shape {a.shape}"))
            c = np.zeros(a.shape[1:])
            used = 0
            for s0 in range(0, a.shape[0], 4096):
                blk = np.asarray(a[s0:s0 + 4096], dtype=float)
                if not np.isfinite(blk).all():
                    raise InputError(str(f), ("", "counts must be finite numbers"))
                used += int((blk.sum(axis=(1, 2)) != 0).sum())
                c += blk.sum(axis=0)
            counts.append(c)
            names.append(f.stem)
            extra.setdefault("sequences", []).append(used)
    shapes = {c.shape for c in counts}
    if len(shapes) != 1:
        raise InputError(path, ("", f"every file needs the same layers x experts shape, got {sorted(shapes)}"))
    cnt = np.stack(counts)
    if layer_base:
        if layer_base >= cnt.shape[1]:
            raise InputError("--layer-base", ("", f"{layer_base} is not below the file's {cnt.shape[1]} layers"))
        cnt = cnt[:, layer_base:]
    tokens = cnt.sum(axis=2) / top_k
    return Marginals(user_names=tuple(names), counts=cnt, tokens=tokens, source=path, fmt=fmt, extra=extra)


def _inclusion_pl(w: np.ndarray, K: int, noise: np.ndarray | None) -> np.ndarray:
    """Plackett-Luce inclusion probabilities: exact, or over fixed Gumbel noise (common random numbers)."""
    from ..routing import inclusion_probabilities, plackett_luce_exact

    if noise is None:
        s, p = plackett_luce_exact(w, K)
        return inclusion_probabilities(s, p, len(w))
    with np.errstate(divide="ignore"):
        g = np.log(w)[None, :] + noise
    top = np.argpartition(-g, K - 1, axis=1)[:, :K]
    return np.bincount(top.ravel(), minlength=len(w)) / len(noise)


def fit_plackett_luce(marginals: np.ndarray, K: int, rng: np.random.Generator, *, iters: int = 60,
                      tol: float = 1e-7, samples: int = 4096, exact_limit: int = 200_000
                      ) -> tuple[np.ndarray, float]:
    """Popularity ``w`` whose Plackett-Luce Top-``K`` inclusion probabilities match ``marginals``.

    ``marginals (E,)`` are activation frequencies (``sum = K`` for full Top-K
    routing).  Iterative proportional scaling ``w <- w * m / incl(w)``;
    inclusion probabilities are exact when ``C(E,K) K! <= exact_limit``, else
    estimated on ``samples`` fixed Gumbel draws.  Returns ``w`` (sums to 1) and
    the largest remaining ``|incl(w) - m|``.
    """
    import math

    m = np.asarray(marginals, dtype=float)
    E = len(m)
    noise = None if math.comb(E, K) * math.factorial(K) <= exact_limit else rng.gumbel(size=(samples, E))
    w = np.maximum(m, 1e-12)
    w = w / w.sum()
    err = np.inf
    for _ in range(iters):
        inc = _inclusion_pl(w, K, noise)
        err = float(np.abs(inc - m).max())
        if err <= tol:
            break
        w = w * np.where(inc > 0, m / np.maximum(inc, 1e-300), 2.0)
        w = np.maximum(w, 1e-15)
        w = w / w.sum()
    return w, err


def instance_from_marginals(marg: Marginals, *, model: str, network: str = "wifi-rtx", nodes: int = 4,
                            capacity: Any = None, device_capacity: Any = None, seed: int = 0,
                            precision: str = "bf16", devices: bool | None = None, tokens: int = 4096,
                            exact_limit: int = 200_000, name: str | None = None) -> Instance:
    """An instance from activation counts, with Top-K sets synthesised by a fitted Plackett-Luce model.

    The metadata records ``coactivation: synthesised ...``, the fit error per
    ``(user, layer)`` and the tokens behind the counts.
    """
    from ..routing import mixture_sets
    from ..suites import physical_model

    arch = get_architecture(model)
    U, L, E = marg.counts.shape
    if L != arch.moe_layers or E != arch.routed_experts:
        raise InputError(marg.source, ("$.expert_popularity",
                                       f"counts are {L} layers x {E} experts but {arch.name} has "
                                       f"{arch.moe_layers} MoE layers x {arch.routed_experts} experts"))
    freq = marg.counts / marg.tokens[:, :, None]
    K = arch.top_k
    problems = []
    if (marg.counts < 0).any():
        problems.append(("$.expert_popularity", "counts must be >= 0"))
    if (freq > 1 + 1e-9).any():
        u, l, e = map(int, np.argwhere(freq > 1 + 1e-9)[0])
        problems.append((f"$.expert_popularity[{l}][{e}]", f"expert {e} of layer {l} is activated by more tokens "
                                                           f"than the file has (user {marg.user_names[u]!r})"))
    tot = freq.sum(axis=2)
    if (tot > K + 1e-6).any():
        u, l = map(int, np.argwhere(tot > K + 1e-6)[0])
        problems.append((f"$.expert_popularity[{l}]", f"layer {l} activates {tot[u, l]:.3f} experts per token, "
                                                      f"more than top-k = {K} (user {marg.user_names[u]!r})"))
    if (tot <= 0).any():
        u, l = map(int, np.argwhere(tot <= 0)[0])
        problems.append((f"$.expert_popularity[{l}]", f"layer {l} has no activations (user {marg.user_names[u]!r})"))
    if problems:
        raise InputError(marg.source, problems)
    rng = np.random.default_rng(seed)
    user_names = list(marg.user_names)
    phys = physical_model(arch, network=network, nodes=nodes, user_names=user_names, capacity=capacity,
                          precision=precision, devices=devices, rng=rng, device_capacity=device_capacity)
    routing, fit_err, ntok = [], np.zeros((U, L)), []
    for u in range(U):
        per, nt = [], []
        for l in range(L):
            m = freq[u, l] * (K / tot[u, l])          # full Top-K routing: frequencies sum to K
            w, fit_err[u, l] = fit_plackett_luce(m, K, np.random.default_rng([seed, 2, u, l]),
                                                 exact_limit=exact_limit)
            sets, p, n = mixture_sets(w[None, :], np.ones(1), K, np.random.default_rng([seed, 3, u, l]),
                                      tokens=tokens, exact_limit=exact_limit)
            per.append((sets, p))
            nt.append(n)
        routing.append(per)
        ntok.append(nt)
    share = marg.tokens.mean(axis=1)
    all_exact = all(n is None for row in ntok for n in row)
    meta = {
        "generator": "slimcaching.instances.traces.instance_from_marginals",
        "params": {"model": arch.name, "network": network, "nodes": nodes, "capacity": capacity,
                   "device_capacity": device_capacity, "seed": seed, "precision": precision, "devices": devices,
                   "tokens": tokens, "exact_limit": exact_limit},
        "architecture": {"name": arch.name, "source": arch.hf_config},
        "precision": phys.precision,
        "network": phys.network.summary(),
        "trace": {"source": os.path.basename(marg.source.rstrip("/")), "format": marg.fmt,
                  "user_column": "file name", "tokens_per_layer": np.round(marg.tokens, 3).tolist(), **marg.extra,
                  "plackett_luce_fit_max_error": float(fit_err.max())},
        "coactivation": "synthesised: Plackett-Luce fitted to the observed activation marginals (the source "
                        "has no co-activation)",
        "sampled_tokens_per_distribution": None if all_exact else ntok,
    }
    stem = Path(marg.source.rstrip("/")).stem
    return assemble(name=name or f"{stem}-{arch.name.lower()}-{network}-s{seed}", experts=np.full(L, E),
                    expert_size=phys.sizes, top_k=np.full(L, K), node_names=phys.node_names,
                    capacity=phys.capacity, user_names=user_names, weight=share / share.sum(),
                    latency=phys.latency, cloud_latency=phys.cloud_latency, routing=routing,
                    size_unit=phys.size_unit, metadata=meta)
