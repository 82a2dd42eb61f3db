"""``megatron`` traces: Megatron-core router traces (``--moe-routing-trace-path``).

``megatron/core/transformer/moe/router_trace.py`` writes one JSON-lines file
per rank, ``router_trace_rank{rank}.jsonl``, one record per ``(step, block,
layer)``::

    {"step": 0, "stage": "pre_dispatch", "block": "decoder", "layer": 3, "rank": 0,
     "num_tokens": 128, "topk": 2, "top_indices": [[12, 45], ...]}

``layer`` is the index in ``decoder.layers`` (every transformer layer, dense
ones included, and local to a pipeline stage), so a model whose first MoE
layer is not layer 0 needs ``--layer-base``.  Records of the multi-token
prediction head (``block == "mtp"``) are not decoder layers and are skipped
(counted in the metadata).  Row ``i`` of ``top_indices`` is the same token in
every layer's record of one ``(rank, step)``; its token id is
``(step, rank, i)`` packed in time order.  The user is one stream by
default, or ``--user-column rank`` / ``step``.  A folder is read file by file.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ...errors import InputError
from .source import Source, arrow_ints, files_of, json_blocks, lists_to_padded
from .stream import Chunk

__all__ = ["MegatronSource"]

_STEP_BITS, _RANK_BITS, _POS_BITS = 23, 16, 24


class MegatronSource(Source):
    fmt = "megatron"

    def __init__(self, path: str, user_column: str = "user"):
        super().__init__(path, user_column)
        self.files = files_of(path, (".jsonl", ".json", ".ndjson"), "router_trace_rank*.jsonl")
        if user_column not in ("user", "rank", "step"):
            raise InputError("--user-column", ("", f"a Megatron router trace has no column {user_column!r}; "
                                                   f"use rank or step (default: one user)"))
        self.info = {"token": "(step, rank, row of top_indices), in time order",
                     "user": "one user" if user_column == "user" else user_column,
                     "layer": "index in decoder.layers (use --layer-base for leading dense layers)"}
        self.skipped_mtp = 0

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        self.skipped_mtp = 0
        for f in self.files:
            for line0, tab in json_blocks(str(f), block_bytes=max(1 << 20, chunk_rows * 64)):
                cols = set(tab.column_names)
                missing = [c for c in ("step", "layer", "top_indices") if c not in cols]
                if missing:
                    raise InputError(str(f), (f"$[{line0}]", f"a Megatron router trace record needs step, layer and "
                                                             f"top_indices; missing {', '.join(missing)}"))
                n = tab.num_rows
                rec = np.arange(line0, line0 + n, dtype=np.int64)
                keep = np.ones(n, dtype=bool)
                import pyarrow.compute as pc

                if "block" in cols:
                    keep = ~pc.fill_null(pc.equal(tab.column("block"), "mtp"), False).to_numpy(zero_copy_only=False)
                    self.skipped_mtp += int((~keep).sum())
                if not keep.any():
                    continue
                tab = tab.filter(keep)
                rec = rec[keep]
                step = arrow_ints(str(f), tab.column("step"), "step", rec)
                layer = arrow_ints(str(f), tab.column("layer"), "layer", rec)
                rank = arrow_ints(str(f), tab.column("rank"), "rank", rec) if "rank" in cols \
                    else np.zeros(len(rec), dtype=np.int64)
                ti = tab.column("top_indices").combine_chunks()
                ntok = pc.fill_null(pc.list_value_length(ti), 0).to_numpy(zero_copy_only=False).astype(np.int64)
                owner = np.repeat(np.arange(len(rec)), ntok)
                rows = rec[owner]
                sets = lists_to_padded(str(f), pc.list_flatten(ti), rows, "top_indices")
                pos = np.arange(len(owner), dtype=np.int64) - np.repeat(np.cumsum(ntok) - ntok, ntok)
                st, rk = step[owner], rank[owner]
                if (st < 0).any() or (st >= 1 << _STEP_BITS).any() or (rk < 0).any() or (rk >= 1 << _RANK_BITS).any() \
                        or (pos >= 1 << _POS_BITS).any():
                    raise InputError(str(f), ("", "step, rank or tokens per record out of the supported range "
                                                  f"(step < 2**{_STEP_BITS}, rank < 2**{_RANK_BITS}, "
                                                  f"num_tokens < 2**{_POS_BITS})"))
                token = (st << (_RANK_BITS + _POS_BITS)) | (rk << _POS_BITS) | pos
                if self.user_column == "user":
                    user = np.full(len(owner), self.users.code("all"), dtype=np.int64)
                else:
                    src = rk if self.user_column == "rank" else st
                    user = self.users.codes(np.char.add(f"{self.user_column}-", src.astype(str)))
                yield Chunk(user=user, token=token, layer=layer[owner], experts=sets, row=rows)
