"""One entry point for every set-carrying trace format: :func:`read_trace`."""
from __future__ import annotations

import os
from pathlib import Path

from ...errors import InputError
from .core import FORMATS, Trace, trace_from_frame
from .jsonl import read_jsonl
from .table import read_table
from .vllm import read_npy

__all__ = ["read_trace"]


def read_trace(path: str | os.PathLike, *, fmt: str = "auto", user_column: str = "user",
               layer_base: int = 0) -> Trace:
    """Read a router trace into the canonical :class:`Trace`.

    Parameters
    ----------
    path : path
        ``.csv`` (optionally ``.gz``), ``.parquet``, ``.npy`` (or a folder of
        them), ``.jsonl``.
    fmt : {"auto", "long", "list", "npy", "jsonl"}
        ``auto`` picks by extension, then by columns (``experts`` -> list).
    user_column : str
        Column identifying the user (request, task, client, ...).
    layer_base : int
        Id of the first MoE layer in the file (1 for 1-based logs).

    Raises
    ------
    InputError
        Missing file, empty trace, missing columns, non-integer ids, an expert
        repeated within one token.
    """
    path = str(path)
    low = path.lower()
    if fmt == "npy" or (fmt == "auto" and (low.endswith(".npy") or Path(path).is_dir())):
        if not os.path.exists(path):
            raise InputError(path, ("", "file not found"))
        tr = read_npy(path)
    elif fmt == "jsonl" or (fmt == "auto" and low.endswith((".jsonl", ".ndjson"))):
        tr = read_jsonl(path, user_column)
    elif fmt in ("auto", "long", "list"):
        tr = trace_from_frame(read_table(path), file=path, user_column=user_column, fmt=fmt, layer_base=layer_base)
    else:
        raise InputError("--format", ("", f"unknown trace format {fmt!r}; valid: auto, {', '.join(FORMATS)}"))
    if layer_base and tr.fmt in ("npy", "jsonl"):
        tr = Trace(**{**tr.__dict__, "layer": tr.layer - int(layer_base)})
    return tr
