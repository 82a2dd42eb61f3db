"""``sglang`` traces: SGLang expert-distribution dumps (``expert_distribution_recorder_*.pt``).

SGLang (``python/sglang/srt/eplb/expert_distribution.py``) records expert
choices between ``/start_expert_distribution_record`` and
``/dump_expert_distribution_record`` and ``torch.save`` s, in
``SGLANG_EXPERT_DISTRIBUTION_RECORDER_DIR``:

* ``--expert-distribution-recorder-mode per_token``: ``{"records": [...],
  "last_physical_to_logical_map": [layers, physical experts]}``; each record
  is one forward pass with ``forward_pass_id``, ``rank``, ``input_ids``,
  ``positions``, ``extend_seq_lens``, ``forward_mode`` and
  ``topk_ids_of_layer`` ``int32 [num_layers, num_tokens, 8]`` of **physical**
  expert ids, ``-1`` where unused (dense layers, columns past the model's
  top-k).  These carry whole sets: ids are mapped to logical experts through
  the map, all ``-1`` rows (dense layers) are skipped.  The record names no
  request, so the user is one stream (or ``--user-column rank``); token =
  ``(forward pass, rank, row)`` in time order.
* ``stat`` / ``stat_approx`` modes: ``{"rank", "logical_count": [steps,
  layers, logical experts], ...}``: activation counts only, read as marginals
  (:mod:`.marginals`).

The files are read without PyTorch and without executing their pickle
(:mod:`.torchfile`).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ...errors import InputError
from .source import Source, files_of
from .stream import Chunk
from .torchfile import LazyTensor, load_torch_file

__all__ = ["SglangSource", "sglang_kind", "sglang_counts"]

_PASS_BITS, _RANK_BITS, _POS_BITS = 23, 16, 24


def _load(path: str) -> dict:
    d = load_torch_file(path)
    if not isinstance(d, dict):
        raise InputError(path, ("", "not an SGLang expert-distribution dump (expected a dict)"))
    return d


def sglang_kind(path: str) -> str:
    """``sglang`` (per-token records) or ``sglang-stat`` (counts) for a dump file or folder."""
    f = files_of(path, (".pt",), "expert_distribution_recorder_*.pt")[0]
    d = _load(str(f))
    if "records" in d:
        return "sglang"
    if "logical_count" in d:
        return "sglang-stat"
    raise InputError(str(f), ("$", "an SGLang dump holds records (per_token mode) or logical_count (stat mode); "
                                   f"found {', '.join(map(str, d))}"))


def sglang_counts(path: str) -> tuple[list[str], list[np.ndarray]]:
    """``stat``-mode dumps: per file, ``logical_count`` summed over its steps -> ``[layers, experts]``."""
    names, counts = [], []
    for f in files_of(path, (".pt",), "expert_distribution_recorder_*.pt"):
        d = _load(str(f))
        c = d.get("logical_count")
        if not isinstance(c, LazyTensor):
            raise InputError(str(f), ("$.logical_count", "a stat-mode dump needs the logical_count tensor "
                                                         "(per_token dumps carry whole sets: --format sglang)"))
        a = c.numpy()
        if a.ndim != 3:
            raise InputError(str(f), ("$.logical_count", f"expected [steps, layers, experts], got shape {a.shape}"))
        names.append(f.stem)
        counts.append(a.sum(axis=0).astype(float))
    return names, counts


class SglangSource(Source):
    fmt = "sglang"

    def __init__(self, path: str, user_column: str = "user"):
        super().__init__(path, user_column)
        if user_column not in ("user", "rank"):
            raise InputError("--user-column", ("", f"an SGLang dump has no column {user_column!r}; use rank "
                                                   f"(default: one user)"))
        self.files = files_of(path, (".pt",), "expert_distribution_recorder_*.pt")
        self.info = {"token": "(forward pass, rank, row of topk_ids_of_layer), in time order",
                     "user": "one user" if user_column == "user" else "rank",
                     "experts": "physical ids mapped to logical through last_physical_to_logical_map"}

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        for f in self.files:
            d = _load(str(f))
            recs = d.get("records")
            if not isinstance(recs, list):
                raise InputError(str(f), ("$.records", "per_token dumps hold a list of records; a stat-mode dump "
                                                       "(logical_count) has counts only: --format sglang-stat"))
            pmap = d.get("last_physical_to_logical_map")
            pmap = pmap.numpy().astype(np.int64) if isinstance(pmap, LazyTensor) else None
            for i, r in enumerate(recs):
                t = r.get("topk_ids_of_layer") if isinstance(r, dict) else None
                if not isinstance(t, LazyTensor):
                    raise InputError(str(f), (f"$.records[{i}].topk_ids_of_layer",
                                              "missing: the dump was not written in per_token mode"))
                a = t.numpy().astype(np.int64)            # [layers, tokens, k]
                if a.ndim != 3:
                    raise InputError(str(f), (f"$.records[{i}].topk_ids_of_layer",
                                              f"expected [layers, tokens, k], got shape {a.shape}"))
                L, T, K = a.shape
                if pmap is not None:
                    if pmap.shape[0] < L:
                        raise InputError(str(f), ("$.last_physical_to_logical_map",
                                                  f"covers {pmap.shape[0]} layers, records have {L}"))
                    bad = (a >= pmap.shape[1])
                    if bad.any():
                        raise InputError(str(f), (f"$.records[{i}].topk_ids_of_layer",
                                                  f"physical expert {int(a[bad][0])} beyond the map's "
                                                  f"{pmap.shape[1]} physical experts"))
                    lay = np.broadcast_to(np.arange(L)[:, None, None], a.shape)
                    a = np.where(a >= 0, pmap[lay, np.maximum(a, 0)], -1)
                used = (a >= 0).any(axis=2)                 # [layers, tokens]: dense layers are all -1
                ll, tt = np.nonzero(used)
                fp = int(r.get("forward_pass_id", i))
                rank = int(r.get("rank", 0))
                if T >= 1 << _POS_BITS or fp >= 1 << _PASS_BITS or rank >= 1 << _RANK_BITS:
                    raise InputError(str(f), (f"$.records[{i}]", "forward pass, rank or tokens out of range"))
                token = (np.int64(fp) << (_RANK_BITS + _POS_BITS)) | (np.int64(rank) << _POS_BITS) | tt
                name = "all" if self.user_column == "user" else f"rank-{rank}"
                u = self.users.code(name)
                yield Chunk(user=np.full(len(tt), u, dtype=np.int64), token=token.astype(np.int64),
                            layer=ll.astype(np.int64), experts=a[ll, tt], row=np.full(len(tt), i, dtype=np.int64))
