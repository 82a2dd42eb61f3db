"""Subsets of experts as bit masks: keys, ids, and vectorised sums over the bits of many masks.

Bit ``i`` of a mask is set when expert ``i`` is in the subset.  Masks are
``int64``, so an instance has at most :data:`MAX_MASK_BITS` experts; tables
indexed by mask (``2**M`` entries) are only used where ``M`` is small.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["MAX_MASK_BITS", "subset_key", "parse_subset_key", "ids_of", "mask_of", "subset_sums", "subset_max",
           "submasks", "bit_matrix", "mask_sums", "popcount"]

MAX_MASK_BITS = 62
"""Largest number of experts a mask can hold (``int64``, sign bit and one spare bit excluded)."""


def subset_key(mask: int) -> str:
    """File key of a subset: sorted expert ids joined by commas (``""`` for the empty set)."""
    return ",".join(str(i) for i in ids_of(mask))


def ids_of(mask: int) -> list[int]:
    """Sorted expert ids of a bit mask."""
    mask = int(mask)
    out, i = [], 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def mask_of(ids: Sequence[int]) -> int:
    m = 0
    for i in ids:
        m |= 1 << int(i)
    return m


def popcount(mask: int) -> int:
    return bin(int(mask)).count("1")


def parse_subset_key(key: str, M: int) -> int | None:
    """Mask of a canonical key, or ``None`` when ``key`` is not canonical for ``M`` experts."""
    if key == "":
        return 0
    prev, mask = -1, 0
    for part in key.split(","):
        # ASCII digits only: str.isdigit() also accepts '١' (Arabic-Indic one) and '²', which
        # int() reads as 1 or rejects; at most two digits, as subsets of a file table have M <= 16
        if not (part.isascii() and part.isdigit()) or len(part) > 2 or (len(part) > 1 and part[0] == "0"):
            return None
        i = int(part)
        if i <= prev or i >= M:
            return None
        prev = i
        mask |= 1 << i
    return mask


def subset_sums(values: np.ndarray) -> np.ndarray:
    """``float64 (2**M,)``: ``out[mask] = sum_{i in mask} values[i]`` (vectorised doubling).

    The sum of a mask is accumulated in increasing expert order, as in
    :func:`mask_sums`, so both give the same floating-point numbers.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(1 << len(values))
    for i, v in enumerate(values):
        out[1 << i: 2 << i] = out[: 1 << i] + v
    return out


def subset_max(values: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """``float64 (2**M,)``: ``out[mask] = max_{i in mask} values[i]`` (``empty`` for mask 0)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(1 << len(values), float(empty))
    for i, v in enumerate(values):
        out[1 << i: 2 << i] = np.maximum(out[: 1 << i], v) if i else v
    out[0] = empty
    return out


def submasks(mask: int) -> np.ndarray:
    """``int64 (2**popcount(mask),)``: every subset of ``mask`` in increasing order.

    Costs ``O(n 2**n)`` for ``n = popcount(mask)``, independent of the number
    of experts (no ``2**M`` table).
    """
    ids = ids_of(mask)
    out = np.zeros(1 << len(ids), dtype=np.int64)
    for j, i in enumerate(ids):
        out[1 << j: 2 << j] = out[: 1 << j] | (1 << i)
    return out  # ids ascending, so the doubling lists masks in increasing order


def bit_matrix(masks: np.ndarray, M: int) -> np.ndarray:
    """``bool (n, M)``: ``out[r, i]`` is bit ``i`` of ``masks[r]``."""
    masks = np.asarray(masks, dtype=np.int64).reshape(-1)
    return ((masks[:, None] >> np.arange(M, dtype=np.int64)[None, :]) & 1).astype(bool)


def mask_sums(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``float64 (n,)``: ``sum_{i in masks[r]} values[i]``, accumulated in increasing ``i``
    (the same numbers as :func:`subset_sums`), for any number of experts."""
    values = np.asarray(values, dtype=np.float64)
    masks = np.asarray(masks, dtype=np.int64).reshape(-1)
    out = np.zeros(len(masks))
    for i, v in enumerate(values):
        hit = (masks >> i) & 1 == 1
        out[hit] += v
    return out
