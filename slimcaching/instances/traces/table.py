"""``long`` and ``list`` traces: CSV or Parquet tables.

* ``list``: ``user, token, layer, experts``, one row per activated set (a
  Parquet list column, or a CSV string such as ``"[3, 7]"``, ``"3 7"``,
  ``"3;7"``): streamed in Arrow batches (``ParquetFile.iter_batches``,
  ``pyarrow.csv.open_csv``), ids split with Arrow compute kernels.
* ``long``: ``user, token, layer, expert``, one row per activated expert.  The
  rows of one set may be anywhere in the file, so the table is read whole
  (pandas) and grouped with one vectorised sort; prefer ``list`` for traces
  larger than memory.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ...errors import InputError
from ...fileio import open_input
from .source import Source, arrow_ints, arrow_users, lists_to_padded
from .stream import Chunk

__all__ = ["read_table", "TableSource", "table_columns"]


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


def _is_parquet(path: str) -> bool:
    return path.lower().endswith((".parquet", ".pq"))


def table_columns(path: str) -> list[str]:
    """Column names of a CSV or Parquet table (header only)."""
    import pyarrow as pa

    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(path, ("", f"cannot read trace: {str(exc).splitlines()[0]}")) from None
    if not head.strip():
        raise InputError(path, ("", "empty trace: no rows"))
    return [c.strip() for c in head.rstrip("\n").split(",")]


class TableSource(Source):
    """``list`` tables streamed in batches; ``long`` tables read whole and grouped."""

    def __init__(self, path: str, fmt: str, user_column: str = "user"):
        super().__init__(path, user_column)
        self.fmt = fmt
        self.info = {"token": "token column", "user": user_column}

    def _columns_error(self, have) -> InputError:
        return InputError(self.path, ("$.columns", f"a trace needs columns {self.user_column}, token, layer and "
                                                   f"expert (one row per activated expert) or experts (a list per "
                                                   f"row); found {', '.join(map(str, have)) or 'none'}"))

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        if self.fmt == "long":
            yield from self._long_chunks(chunk_rows)
            return
        import pyarrow as pa
        import pyarrow.compute as pc

        need = [self.user_column, "token", "layer", "experts"]
        have = table_columns(self.path)
        if any(c not in have for c in need):
            raise self._columns_error(have)
        start = 0
        for batch in self._batches(need, chunk_rows):
            n = batch.num_rows
            rows = np.arange(start, start + n, dtype=np.int64)
            start += n
            ex = batch.column(batch.schema.get_field_index("experts"))
            if pa.types.is_string(ex.type) or pa.types.is_large_string(ex.type):
                s = pc.utf8_trim_whitespace(pc.replace_substring_regex(ex, r"[\[\](){}]", ""))
                empty = pc.fill_null(pc.equal(s, ""), True)
                ex = pc.if_else(empty, pa.scalar(None, pa.list_(pa.string())), pc.split_pattern_regex(s, r"[,;\s]+"))
            col = lambda name: batch.column(batch.schema.get_field_index(name))  # noqa: E731
            yield Chunk(user=arrow_users(self.path, col(self.user_column), self.user_column, rows, self.users),
                        token=arrow_ints(self.path, col("token"), "token", rows),
                        layer=arrow_ints(self.path, col("layer"), "layer", rows),
                        experts=lists_to_padded(self.path, ex, rows, "experts"), row=rows)
        if start == 0:
            raise InputError(self.path, ("", "empty trace: no rows"))

    def _batches(self, columns, chunk_rows):
        import pyarrow as pa

        try:
            if _is_parquet(self.path):
                import pyarrow.parquet as pq

                yield from pq.ParquetFile(self.path).iter_batches(batch_size=max(1, int(chunk_rows)), columns=columns)
                return
            import pyarrow.csv as pcsv

            types = {c: pa.string() for c in columns if c in (self.user_column, "experts")}
            reader = pcsv.open_csv(self.path, read_options=pcsv.ReadOptions(block_size=max(1 << 16, int(chunk_rows) * 32)),
                                   convert_options=pcsv.ConvertOptions(include_columns=columns, column_types=types,
                                                                       strings_can_be_null=True))
            for batch in reader:
                yield batch
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(self.path, ("", f"cannot read trace: {str(exc).splitlines()[0]}")) from None

    def _long_chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        from .core import trace_from_frame

        tr = trace_from_frame(read_table(self.path), file=self.path, user_column=self.user_column, fmt="long")
        for name in tr.user_names:
            self.users.code(name)
        for a in range(0, tr.n_sets, max(1, int(chunk_rows))):
            b = min(tr.n_sets, a + max(1, int(chunk_rows)))
            yield Chunk(user=tr.user[a:b], token=tr.token[a:b], layer=tr.layer[a:b], experts=tr.experts[a:b],
                        row=tr.row[a:b])
