"""``jsonl`` traces: JSON-lines routing logs, one object per ``(token, layer)``::

    {"layer_idx": 3, "token_idx": 17, "selected_ids": [5, 1], "gate_weights": [0.7, 0.3]}

plus the user column when the log has one (else one user).  Parsed block by
block with ``pyarrow.json`` (bounded memory, no Python object per id).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ...errors import InputError
from .source import Source, arrow_ints, arrow_users, files_of, json_blocks, lists_to_padded
from .stream import Chunk

__all__ = ["JsonlSource"]

_COLUMNS = ("layer_idx", "token_idx", "selected_ids")


class JsonlSource(Source):
    fmt = "jsonl"

    def __init__(self, path: str, user_column: str = "user"):
        super().__init__(path, user_column)
        self.files = files_of(path, (".jsonl", ".ndjson", ".json"), "JSON-lines")
        self.info = {"token": "token_idx", "user": user_column}
        self.has_user = None

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        for f in self.files:
            for line0, tab in json_blocks(str(f), block_bytes=max(1 << 20, int(chunk_rows) * 48)):
                cols = tab.column_names
                missing = [c for c in _COLUMNS if c not in cols]
                if missing:
                    raise InputError(str(f), (f"$[{line0}]", f"a routing log line needs layer_idx, token_idx and "
                                                             f"selected_ids; missing {', '.join(missing)}"))
                n = tab.num_rows
                rows = np.arange(line0, line0 + n, dtype=np.int64)
                if self.has_user is None:
                    self.has_user = self.user_column in cols
                    if not self.has_user:
                        self.info["user"] = "(none: one user)"
                if self.has_user:
                    if self.user_column not in cols:
                        raise InputError(str(f), (f"$[{line0}]", f"missing user column {self.user_column!r}"))
                    user = arrow_users(str(f), tab.column(self.user_column), self.user_column, rows, self.users)
                else:
                    user = np.full(n, self.users.code("user-0"), dtype=np.int64)
                yield Chunk(user=user, token=arrow_ints(str(f), tab.column("token_idx"), "token_idx", rows),
                            layer=arrow_ints(str(f), tab.column("layer_idx"), "layer_idx", rows),
                            experts=lists_to_padded(str(f), tab.column("selected_ids"), rows, "selected_ids"),
                            row=rows)
