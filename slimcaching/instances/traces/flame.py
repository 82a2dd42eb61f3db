"""``flame`` traces: FLAME-MoE routing traces, a folder of per-layer Parquet files.

The public FLAME-MoE traces (dataset ``CMU-FLAME/FLAME-MoE-Traces``) keep,
per checkpoint, ``actives/iter_NNNN/layer_NN.parquet``: one file per MoE
layer, one row per token, columns ``indices`` (``list<int16>``, the top-6
routed expert ids) and ``scores`` (``list<float16>``, the router
probabilities); row ``i`` of every layer file is token ``i`` of the shared
``samples/`` files.  ``NN`` numbers transformer layers (the MoE layers of
FLAME-MoE-290M are 2..9), so ``--layer-base`` gives the first MoE layer.

The folder is read with ``pyarrow.dataset``, fragment by fragment and batch
by batch (only ``indices`` is read).  Token = row; one user.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import InputError
from .source import Source, lists_to_padded
from .stream import Chunk

__all__ = ["FlameSource", "is_flame_folder"]

_LAYER = re.compile(r"layer_(\d+)\.parquet$", re.IGNORECASE)


def is_flame_folder(path: str) -> bool:
    p = Path(path)
    return p.is_dir() and any(_LAYER.search(f.name) for f in p.glob("*.parquet"))


class FlameSource(Source):
    fmt = "flame"

    def __init__(self, path: str):
        super().__init__(path, "one user")
        p = Path(path)
        if not p.exists():
            raise InputError(path, ("", "file not found"))
        if not p.is_dir():
            raise InputError(path, ("", "a FLAME-MoE trace is a folder of layer_NN.parquet files "
                                        "(actives/iter_NNNN/)"))
        self.files = sorted((f for f in p.glob("*.parquet") if _LAYER.search(f.name)),
                            key=lambda f: int(_LAYER.search(f.name).group(1)))
        if not self.files:
            iters = sorted(d.name for d in p.iterdir() if d.is_dir() and d.name.startswith("iter_"))
            hint = f"; pick one checkpoint, e.g. {path.rstrip('/')}/{iters[-1]}" if iters else ""
            raise InputError(path, ("", f"empty trace: no layer_NN.parquet files in the folder{hint}"))
        self.info = {"token": "row of the layer file (aligned with samples/)", "user": "one user",
                     "layer": "NN of layer_NN.parquet (transformer layer; use --layer-base)"}
        self.users.code("flame")

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        import pyarrow as pa
        import pyarrow.dataset as ds

        try:
            dataset = ds.dataset([str(f) for f in self.files], format="parquet")
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(self.path, ("", f"cannot read Parquet: {str(exc).splitlines()[0]}")) from None
        if "indices" not in dataset.schema.names:
            raise InputError(self.path, ("$.columns", f"a FLAME-MoE layer file needs column indices; found "
                                                      f"{', '.join(dataset.schema.names)}"))
        for frag in dataset.get_fragments():
            layer = int(_LAYER.search(Path(frag.path).name).group(1))
            start = 0
            for batch in frag.to_batches(columns=["indices"], batch_size=max(1, int(chunk_rows))):
                n = batch.num_rows
                rows = np.arange(start, start + n, dtype=np.int64)
                sets = lists_to_padded(frag.path, batch.column(0), rows, "indices")
                yield Chunk(user=np.zeros(n, dtype=np.int64), token=rows, layer=np.full(n, layer, dtype=np.int64),
                            experts=sets, row=rows)
                start += n
