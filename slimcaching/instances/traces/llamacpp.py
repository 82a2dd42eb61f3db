"""``llamacpp`` traces: llama-server expert-selection logs, CSV ``layer_id,expert_ids``.

The log (documented with llama.cpp's MoE analysis scripts) has a header
``layer_id,expert_ids`` and one row per token and MoE layer, the ids
space-separated: ``3,52 40 85 110 79 113 60 130``.  It has no token column:
the token of a row is its **position within its layer** (the n-th row of
layer ``l`` is token ``n``), which is what the instance metadata records.
``layer_id`` is llama.cpp's block index (``blk.N``), so leading dense layers
need ``--layer-base``.  The same log file may interleave ``gate_input,...``
records of another kind; they are skipped and counted.  A folder holds one
user per file; otherwise one user.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ...errors import InputError
from .source import Source, arrow_ints, files_of, lists_to_padded
from .stream import Chunk

__all__ = ["LlamaCppSource"]


class LlamaCppSource(Source):
    fmt = "llamacpp"

    def __init__(self, path: str):
        super().__init__(path, "file name")
        self.files = files_of(path, (".csv", ".log", ".txt"), "layer_id,expert_ids")
        for f in self.files:
            self.users.code(f.stem)
        self.info = {"token": "position of the row within its layer", "user": "file name",
                     "layer": "layer_id (llama.cpp block index; use --layer-base for leading dense layers)"}
        self.skipped = 0

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv

        self.skipped = 0
        for f in self.files:
            u = self.users.code(f.stem)

            def skip(row, _self=self):
                if (row.text or "").startswith("gate_input,"):
                    _self.skipped += 1
                    return "skip"
                return "error"

            try:
                reader = pcsv.open_csv(
                    str(f), read_options=pcsv.ReadOptions(block_size=max(1 << 16, int(chunk_rows) * 32)),
                    parse_options=pcsv.ParseOptions(invalid_row_handler=skip),
                    convert_options=pcsv.ConvertOptions(column_types={"layer_id": pa.string(),
                                                                      "expert_ids": pa.string()}))
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(str(f), ("", f"cannot read CSV: {str(exc).splitlines()[0]}")) from None
            names = reader.schema.names
            if names[:2] != ["layer_id", "expert_ids"]:
                raise InputError(str(f), ("$.columns", f"a llama.cpp expert log has columns layer_id,expert_ids; "
                                                       f"found {', '.join(names)}"))
            seen: dict[int, int] = {}
            start = 0
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as exc:
                    raise InputError(str(f), ("", f"cannot read CSV: {str(exc).splitlines()[0]}")) from None
                n = batch.num_rows
                rows = np.arange(start, start + n, dtype=np.int64) + 1      # line 1 is the header
                start += n
                layer = arrow_ints(str(f), batch.column(0), "layer_id", rows)
                ids = pc.split_pattern_regex(pc.utf8_trim_whitespace(batch.column(1)), r"[\s;,]+")
                sets = lists_to_padded(str(f), ids, rows, "expert_ids")
                # token = position within the layer, counted across batches
                order = np.argsort(layer, kind="stable")
                sl = layer[order]
                first = np.r_[True, sl[1:] != sl[:-1]]
                grp_start = np.maximum.accumulate(np.where(first, np.arange(n), 0))
                rank = np.arange(n) - grp_start
                base = np.array([seen.get(int(x), 0) for x in sl[first]], dtype=np.int64)
                tok_sorted = rank + base[np.cumsum(first) - 1]
                for x, c in zip(*np.unique(sl, return_counts=True)):
                    seen[int(x)] = seen.get(int(x), 0) + int(c)
                token = np.empty(n, dtype=np.int64)
                token[order] = tok_sorted
                yield Chunk(user=np.full(n, u, dtype=np.int64), token=token, layer=layer, experts=sets, row=rows)
