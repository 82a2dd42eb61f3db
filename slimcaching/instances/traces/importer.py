"""From a trace file to instances in one call: :func:`import_trace` (what ``from-trace`` runs)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ...errors import InputError
from ..catalog import get_architecture
from ..model import Instance
from .core import instances_from_counts
from .marginals import MARGINAL_FORMATS, instance_from_marginals, read_marginals
from .read import count_trace, detect_format, open_source
from .split import parse_split
from .stream import DEFAULT_CHUNK_ROWS, DEGENERATE_RATIO, truncate

__all__ = ["import_trace", "Imported", "DEFAULT_MAX_SETS"]

#: Largest routing table an import builds unless told otherwise (about 0.5 GB of instance at top-8).
DEFAULT_MAX_SETS = 5_000_000


@dataclass
class Imported:
    """The instances an import built (one, or fit and test) and what it warns about."""

    instances: list[Instance]
    warnings: list[str] = field(default_factory=list)


def import_trace(path: str | os.PathLike, *, model: str, fmt: str = "auto", user_column: str = "user",
                 layer_base: int = 0, top_k: int | None = None, network: str = "wifi-rtx", nodes: int = 4,
                 capacity: Any = None, device_capacity: Any = None, seed: int = 0, precision: str = "bf16",
                 devices: bool | None = None, name: str | None = None, tokens: int = 4096,
                 min_count: int | None = None, top_mass: float | None = None, tail: str = "independent",
                 max_sets: int | None = DEFAULT_MAX_SETS, split: str | None = None, split_by: str = "time",
                 chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Imported:
    """Detect the format, stream-count the sets, cut the tail if asked, build the instance(s).

    Parameters
    ----------
    path : path
        Trace file or folder.
    model : str
        Catalog architecture of the traced model.
    fmt : str
        ``auto`` or one of :data:`.read.ALL_FORMATS`.
    top_k : int, optional
        Model a lower Top-K (required for a top-1 trace of a top-K > 1 model).
    min_count, top_mass, tail
        Truncation, see :func:`.stream.truncate`; recorded in ``metadata.truncation``.
    max_sets : int, optional
        Refuse to build more than this many routing rows (a degenerate trace);
        ``None`` for no limit.
    split : str, optional
        ``FIT:TEST`` fractions; two instances over the same network (see :mod:`.split`).

    Returns
    -------
    Imported
        The instances and warnings (a low tokens-per-distinct-set ratio).

    Raises
    ------
    InputError
        Anything wrong with the file or the options, naming the file, field and rule.
    """
    path = str(path)
    arch = get_architecture(model)
    K = arch.top_k if top_k is None else int(top_k)
    if fmt == "auto":
        fmt = detect_format(path, experts=arch.routed_experts, top_k=arch.top_k)
    common = dict(model=model, network=network, nodes=nodes, capacity=capacity, device_capacity=device_capacity,
                  seed=seed, precision=precision, devices=devices, name=name)
    if fmt in MARGINAL_FORMATS:
        if split or min_count or top_mass:
            raise InputError("--format", ("", f"{fmt} holds activation counts only: --split, --min-count and "
                                              f"--top-mass need a trace of whole sets"))
        marg = read_marginals(path, fmt=fmt, top_k=K, layer_base=layer_base)
        return Imported([instance_from_marginals(marg, tokens=tokens, **common)])
    src = open_source(path, fmt, user_column=user_column, experts=arch.routed_experts, top_k=arch.top_k)
    sp = parse_split(split, split_by, seed) if split else None
    counts = count_trace(src, layers=arch.moe_layers, experts=arch.routed_experts, top_k=K, model=arch.name,
                         layer_base=layer_base, chunk_rows=chunk_rows, split=sp)
    counts.info["layer_base"] = layer_base
    warnings = []
    if counts.ratio < DEGENERATE_RATIO:
        warnings.append(f"{counts.rows:,} (token, layer) rows give {counts.distinct:,} distinct (user, layer, set) "
                        f"entries: {counts.ratio:.2f} tokens per distinct set; the empirical "
                        f"distribution is close to the trace itself and an optimum over it may over-fit "
                        f"(see --min-count, --top-mass, --split)")
    extra: dict = {}
    if min_count is not None or top_mass is not None:
        counts, extra["truncation"] = truncate(counts, min_count=min_count, top_mass=top_mass, tail=tail)
    if sp is not None:
        extra["split"] = sp.record()
    return Imported(instances_from_counts(counts, top_k=top_k, max_sets=max_sets, extra=extra, **common), warnings)
