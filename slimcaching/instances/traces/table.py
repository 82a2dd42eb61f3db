"""``long`` and ``list`` traces: CSV or Parquet tables (llama.cpp-style logs once exploded, list columns)."""
from __future__ import annotations

import pandas as pd

from ...errors import InputError
from ...fileio import open_input

__all__ = ["read_table"]


def read_table(path: str) -> pd.DataFrame:
    low = path.lower()
    try:
        with open_input(path) as fh:  # size-capped; .gz decompressed as a capped stream
            if low.endswith((".parquet", ".pq")):
                return pd.read_parquet(fh)
            return pd.read_csv(fh, skipinitialspace=True)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except pd.errors.EmptyDataError:
        raise InputError(path, ("", "empty trace: no rows")) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise InputError(path, ("", f"cannot read trace: {str(exc).splitlines()[0]}")) from None
