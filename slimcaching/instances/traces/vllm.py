"""``npy`` traces: vLLM-style routed-expert arrays ``[tokens, layers, top_k]``, one file per user."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError
from ...fileio import read_npy as load_npy
from .core import Trace, _group

__all__ = ["read_npy"]


def read_npy(path: str) -> Trace:
    p = Path(path)
    files = sorted(p.glob("*.npy")) if p.is_dir() else [p]
    if not files:
        raise InputError(path, ("", "empty trace: no .npy files"))
    us, ts, ls, es, rs, names = [], [], [], [], [], []
    for k, f in enumerate(files):
        a = load_npy(f)
        if a.ndim == 2:
            a = a[:, :, None]                   # [tokens, layers]: top-1
        if a.ndim != 3 or not np.issubdtype(a.dtype, np.integer):
            raise InputError(str(f), ("", f"expected an integer array [tokens, layers, top_k], "
                                          f"got {a.dtype} {a.shape}"))
        T, L, K = a.shape
        tt, ll, _ = np.meshgrid(np.arange(T), np.arange(L), np.arange(K), indexing="ij")
        us.append(np.full(a.size, k))
        ts.append(tt.ravel())
        ls.append(ll.ravel())
        es.append(a.ravel().astype(np.int64))
        rs.append(tt.ravel())
        names.append(f.stem)
    if sum(len(x) for x in us) == 0:
        raise InputError(path, ("", "empty trace: no rows"))
    return _group(path, np.concatenate(us), tuple(names), np.concatenate(ts), np.concatenate(ls),
                  np.concatenate(es), np.concatenate(rs), "npy", "file name")
