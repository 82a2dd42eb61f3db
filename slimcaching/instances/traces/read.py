"""One entry point for every trace format: detection, :func:`open_source`,
:func:`count_trace` (streaming) and :func:`read_trace` (the whole canonical table)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import InputError
from .core import FORMATS, Trace
from .marginals import MARGINAL_FORMATS
from .source import Source
from .stream import DEFAULT_CHUNK_ROWS, Counts, count_chunks, sorted_sets

__all__ = ["read_trace", "open_source", "detect_format", "count_trace", "MARGINAL_FORMATS", "ALL_FORMATS"]

ALL_FORMATS = FORMATS + MARGINAL_FORMATS

_ARRAY = (".npy", ".npz")
_JSONL = (".jsonl", ".ndjson")


def _first(path: Path, suffixes: Sequence[str]) -> Path | None:
    return next((f for f in sorted(path.iterdir()) if f.is_file() and f.name.lower().endswith(tuple(suffixes))), None)


def _jsonl_kind(path: str) -> str:
    """``megatron`` or ``jsonl`` from the first line's keys."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            line = fh.readline()
        keys = set(json.loads(line)) if line.strip() else set()
    except (OSError, UnicodeDecodeError, ValueError):
        return "jsonl"
    if {"top_indices", "layer", "step"} <= keys:
        return "megatron"
    if {"layer_idx", "token_idx", "selected_ids"} <= keys:
        return "jsonl"
    raise InputError(path, ("", f"JSON lines with keys {', '.join(sorted(keys)) or 'none'}: neither a Megatron router "
                                f"trace (step, layer, top_indices: --format megatron) nor a routing log "
                                f"(layer_idx, token_idx, selected_ids: --format jsonl)"))


def detect_format(path: str | os.PathLike, *, experts: int | None = None, top_k: int | None = None) -> str:
    """The ``--format`` of ``path`` from its extension, header or keys, or an error naming the choices.

    With the model's ``experts`` and ``top_k``, an integer array whose last
    axis is the expert count is recognised as a count array (MoE-Infinity).
    """
    from .flame import is_flame_folder
    from .vllm import array_kind

    path = str(path)
    p = Path(path)
    if not p.exists():
        raise InputError(path, ("", "file not found"))
    probe = p
    if p.is_dir():
        if is_flame_folder(path):
            return "flame"
        if any(d.is_dir() and d.name.startswith("iter_") for d in p.iterdir()):
            return "flame"
        probe = _first(p, _ARRAY + _JSONL + (".json", ".pt", ".csv", ".log", ".parquet", ".pq")) or p
        if probe == p:
            raise InputError(path, ("", "empty trace: no trace files in the folder"))
    low = probe.name.lower()
    if low.endswith(_ARRAY):
        kind = array_kind(path, experts, top_k)
        if kind == "npy" and experts is not None and top_k is not None:
            shape = _array_shape(probe)
            if len(shape) == 3 and shape[2] > top_k:
                raise InputError(path, ("", f"integer array of shape {shape}: its last axis ({shape[2]}) is wider "
                                            f"than top-k ({top_k}) but is not the {experts} experts of a count array; "
                                            f"pass --format npy (expert ids) or --format counts-npy (counts)"))
        return kind
    if low.endswith(_JSONL):
        return _jsonl_kind(str(probe))
    if low.endswith(".json"):
        return "fiddler"
    if low.endswith(".pt"):
        from .sglang import sglang_kind

        return sglang_kind(path)
    if low.endswith((".csv", ".log", ".txt", ".parquet", ".pq", ".csv.gz")):
        from .table import table_columns

        cols = table_columns(str(probe))
        if cols[:2] == ["layer_id", "expert_ids"]:
            return "llamacpp"
        return "list" if "experts" in cols else "long"
    raise InputError(path, ("", f"cannot tell the trace format from {probe.name!r}; pass --format, one of "
                                f"{', '.join(ALL_FORMATS)}"))


def _array_shape(f: Path) -> tuple:
    import zipfile

    from .vllm import npy_header

    if f.suffix.lower() == ".npz":
        with zipfile.ZipFile(f) as zf:
            m = next(m for m in zf.infolist() if m.filename.endswith(".npy"))
            with zf.open(m) as fh:
                return npy_header(fh, str(f), None)[0]
    with open(f, "rb") as fh:
        return npy_header(fh, str(f), None)[0]


def open_source(path: str | os.PathLike, fmt: str = "auto", *, user_column: str = "user",
                experts: int | None = None, top_k: int | None = None) -> Source:
    """The streaming :class:`~.source.Source` for a set-carrying trace.

    Raises
    ------
    InputError
        Unknown format, a marginal-only format (use :func:`.marginals.read_marginals`),
        or a file that does not exist.
    """
    path = str(path)
    if fmt == "auto":
        fmt = detect_format(path, experts=experts, top_k=top_k)
    if fmt in MARGINAL_FORMATS:
        raise InputError(path, ("", f"{fmt} files hold activation counts, not sets: read them with "
                                    f"read_marginals (from-trace does so with --format {fmt})"))
    if fmt not in FORMATS:
        raise InputError("--format", ("", f"unknown trace format {fmt!r}; valid: auto, {', '.join(ALL_FORMATS)}"))
    if not os.path.exists(path):
        raise InputError(path, ("", "file not found"))
    if fmt in ("npy", "exflow"):
        from .vllm import NpySource

        return NpySource(path, fmt)
    if fmt == "jsonl":
        from .jsonl import JsonlSource

        return JsonlSource(path, user_column)
    if fmt == "megatron":
        from .megatron import MegatronSource

        return MegatronSource(path, user_column)
    if fmt == "flame":
        from .flame import FlameSource

        return FlameSource(path)
    if fmt == "llamacpp":
        from .llamacpp import LlamaCppSource

        return LlamaCppSource(path)
    if fmt == "sglang":
        from .sglang import SglangSource

        return SglangSource(path, user_column)
    from .table import TableSource

    if Path(path).is_dir():
        raise InputError(path, ("", f"a {fmt} trace is one CSV or Parquet file, not a folder"))
    if fmt not in ("long", "list"):  # pragma: no cover - FORMATS and the branches above agree
        raise InputError("--format", ("", f"unknown trace format {fmt!r}"))
    return TableSource(path, fmt, user_column)


def _source_info(src: Source) -> dict:
    return {"source": os.path.basename(src.path.rstrip("/")), "format": src.fmt,
            "user_column": src.info.get("user", src.user_column), **{k: v for k, v in src.info.items() if k != "user"}}


def count_trace(source: Source, *, layers: int, experts: int, top_k: int, model: str = "the model",
                layer_base: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS, split=None) -> Counts:
    """Stream ``source`` through :func:`.stream.count_chunks`; ``split`` is a
    :class:`.split.Split` (fit/test) or ``None``."""
    part_of, parts = None, ("all",)
    if split is not None:
        part_of, parts = split.assigner(source, chunk_rows), ("fit", "test")
    counts = count_chunks(source.chunks(chunk_rows), user_names=source.user_names, file=source.path, layers=layers,
                          experts=experts, top_k=top_k, layer_base=layer_base, model=model, part_of=part_of,
                          parts=parts, info=_source_info(source))
    for attr, key in (("skipped_mtp", "skipped_mtp_records"), ("skipped", "skipped_lines")):
        if getattr(source, attr, 0):
            counts.info[key] = int(getattr(source, attr))
    return counts


def read_trace(path: str | os.PathLike, *, fmt: str = "auto", user_column: str = "user",
               layer_base: int = 0, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Trace:
    """Read a whole router trace into the canonical :class:`Trace` (small and medium traces;
    :func:`count_trace` streams large ones).

    Parameters
    ----------
    path : path
        A file or folder in one of :data:`FORMATS`.
    fmt : str
        ``auto`` (by extension, header, keys or columns) or a name of :data:`FORMATS`.
    user_column : str
        Column identifying the user (request, task, client, ...), where the format has one.
    layer_base : int
        Id of the first MoE layer in the file (1 for 1-based logs), for every format.

    Raises
    ------
    InputError
        Missing file, empty trace, missing columns, non-integer ids, an expert
        repeated within one token.
    """
    src = open_source(path, fmt, user_column=user_column)
    parts = {k: [] for k in ("user", "token", "layer", "experts", "row")}
    width = 1
    for ch in src.chunks(chunk_rows):
        if not len(ch):
            continue
        layer = ch.layer.astype(np.int64) - int(layer_base)
        sets = sorted_sets(src.path, ch.experts, ch.token, layer, ch.row)
        width = max(width, sets.shape[1])
        for k, v in (("user", ch.user), ("token", ch.token), ("layer", layer), ("experts", sets), ("row", ch.row)):
            parts[k].append(np.asarray(v, dtype=np.int64))
    if not parts["user"]:
        raise InputError(str(path), ("", "empty trace: no rows"))
    ex = np.concatenate([np.pad(e, ((0, 0), (0, width - e.shape[1])), constant_values=-1) for e in parts["experts"]])
    u, t, lay, row = (np.concatenate(parts[k]) for k in ("user", "token", "layer", "row"))
    order = np.lexsort((lay, t, u))
    info = _source_info(src)
    return Trace(user_names=tuple(src.user_names()), user=u[order], token=t[order], layer=lay[order],
                 experts=ex[order], row=row[order], source=src.path, fmt=src.fmt,
                 user_column=str(info["user_column"]))
