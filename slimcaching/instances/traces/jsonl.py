"""``jsonl`` traces: JSON-lines routing logs with ``layer_idx, token_idx, selected_ids``."""
from __future__ import annotations

import pandas as pd

from ...errors import InputError
from ...fileio import open_input
from .core import Trace, trace_from_frame

__all__ = ["read_jsonl"]


def read_jsonl(path: str, user_column: str) -> Trace:
    try:
        with open_input(path) as fh:  # .gz decompressed as a capped stream
            df = pd.read_json(fh, lines=True)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except ValueError as exc:
        raise InputError(path, ("", f"cannot read JSON lines: {str(exc).splitlines()[0]}")) from None
    if len(df) == 0:
        raise InputError(path, ("", "empty trace: no rows"))
    ren = {"layer_idx": "layer", "token_idx": "token", "selected_ids": "experts"}
    df = df.rename(columns=ren)
    if user_column not in df.columns:
        df[user_column] = "user-0"
        used = "(none: one user)"
    else:
        used = user_column
    tr = trace_from_frame(df, file=path, user_column=user_column, fmt="list")
    return Trace(**{**tr.__dict__, "fmt": "jsonl", "user_column": used})
