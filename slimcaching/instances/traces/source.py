"""What every streaming adapter shares: the :class:`Source` interface, user
codes discovered while reading, and Arrow list columns turned into padded
integer arrays without a Python object per id."""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import InputError
from .stream import Chunk

__all__ = ["Source", "UserCodes", "lists_to_padded", "json_blocks", "int_array", "arrow_ints", "arrow_users", "files_of"]


class Source:
    """A trace file (or folder) read as a stream of :class:`~.stream.Chunk` s.

    Subclasses set ``fmt``, ``user_column`` and ``info`` and implement
    :meth:`chunks`.  ``info`` holds the format facts the instance metadata
    records (what a token and a user are in this source).
    """

    fmt = "?"
    #: True when the source keeps whole activated sets (False: marginals only).
    sets = True

    def __init__(self, path: str, user_column: str = "user"):
        self.path = str(path)
        self.user_column = user_column
        self.users = UserCodes()
        self.info: dict = {}

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:  # pragma: no cover - interface
        raise NotImplementedError

    def user_names(self) -> list[str]:
        return self.users.names

    def token_ranges(self, chunk_rows: int) -> dict[int, tuple[int, int]]:
        """``user -> (min token, max token)``; one pass over the stream unless a subclass knows it."""
        lo: dict[int, int] = {}
        hi: dict[int, int] = {}
        for ch in self.chunks(chunk_rows):
            if not len(ch):
                continue
            order = np.argsort(ch.user, kind="stable")
            u, t = ch.user[order], ch.token[order]
            b = np.flatnonzero(np.r_[True, u[1:] != u[:-1], True])
            for a, z in zip(b[:-1], b[1:]):
                k = int(u[a])
                lo[k] = min(lo.get(k, int(t[a:z].min())), int(t[a:z].min()))
                hi[k] = max(hi.get(k, int(t[a:z].max())), int(t[a:z].max()))
        return {k: (lo[k], hi[k]) for k in lo}


class UserCodes:
    """Global integer codes for user labels met chunk by chunk (one dict entry per *user*)."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self.names: list[str] = []

    def code(self, name: str) -> int:
        k = self._index.get(name)
        if k is None:
            k = self._index[name] = len(self.names)
            self.names.append(name)
        return k

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Codes of an array of labels: factorise the chunk, then map its few distinct labels."""
        uniq, inv = np.unique(np.asarray(values).astype(str), return_inverse=True)
        lut = np.array([self.code(str(v)) for v in uniq], dtype=np.int64)
        return lut[inv.ravel()]


def arrow_users(file: str, col, field: str, rows: np.ndarray, users: UserCodes) -> np.ndarray:
    """Global user codes of an Arrow column: dictionary-encode the chunk, map its few labels.
    An empty cell (null or blank) is rejected naming the row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    try:
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = pc.cast(col, pa.string())
        col.validate(full=True)
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(col), ""), True).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        raise InputError(file, (f"$.{field}", f"a {field} cell is not valid UTF-8 text")) from None
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputError(file, (f"$[{rows[i]}].{field}", f"empty {field} cell: every row needs a user"))
    enc = pc.dictionary_encode(col)
    lut = np.array([users.code(str(v)) for v in enc.dictionary.to_pylist()], dtype=np.int64)
    return lut[enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)]


def files_of(path: str, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """The file itself, or the files of a folder with one of ``suffixes`` (sorted)."""
    p = Path(path)
    if not p.exists():
        raise InputError(path, ("", "file not found"))
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(suffixes))
        if not files:
            raise InputError(path, ("", f"empty trace: no {what} files in the folder"))
        return files
    return [p]


def int_array(file: str, values: np.ndarray, field: str, rows: np.ndarray) -> np.ndarray:
    """``int64`` copy of ``values``; NaN, infinities, fractions, non-numbers and ids
    beyond ``2**53`` (where floats stop being exact) are rejected with the source row."""
    import pandas as pd

    v = np.asarray(values)
    if np.issubdtype(v.dtype, np.integer):
        return v.astype(np.int64, copy=False)
    if v.dtype == bool:
        f = np.full(len(v), np.nan)
    elif np.issubdtype(v.dtype, np.number):
        f = v.astype(float)
    else:
        f = pd.to_numeric(pd.Series(v, dtype=object), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(f) | (f != np.floor(f)) | (np.abs(f) > 2.0 ** 53)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        big = " (beyond 2**53, where ids stop being exact)" if np.isfinite(f[i]) and abs(f[i]) > 2.0 ** 53 else ""
        got = values[i].item() if isinstance(values[i], np.generic) else values[i]
        raise InputError(file, (f"$[{rows[i]}].{field}", f"{field} must be an integer, got {got!r}{big}"))
    return f.astype(np.int64)


def arrow_ints(file: str, col, field: str, rows: np.ndarray) -> np.ndarray:
    """``int64`` values of an Arrow column (integers, integral floats or numeric strings);
    nulls and anything else are rejected naming the row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(file, (f"$[{rows[i]}].{field}", f"{field} is empty"))
    if pa.types.is_integer(col.type):
        return col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            col = pc.cast(pc.utf8_trim_whitespace(col), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raw = col.to_numpy(zero_copy_only=False)
            return int_array(file, raw, field, rows)
    if not pa.types.is_floating(col.type):
        raise InputError(file, (f"$.{field}", f"{field} must hold integers, got {col.type}"))
    return int_array(file, col.to_numpy(zero_copy_only=False), field, rows)


def lists_to_padded(file: str, arr, rows: np.ndarray, field: str) -> np.ndarray:
    """A (chunked) Arrow list column -> ``int64 (n, kmax)`` padded with ``-1``.

    Null or empty lists give all-padding rows (rejected later as empty sets);
    non-integer members are rejected naming the row.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)
            or pa.types.is_fixed_size_list(arr.type)):
        raise InputError(file, (f"$.{field}", f"expected a list of expert ids per row, got {arr.type}"))
    n = len(arr)
    size = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(arr)
    if flat.null_count:
        i = int(np.searchsorted(np.cumsum(size), int(np.flatnonzero(
            flat.is_null().to_numpy(zero_copy_only=False))[0]), side="right"))
        raise InputError(file, (f"$[{rows[i]}].{field}", f"{field} holds a null id"))
    if pa.types.is_integer(flat.type):
        vals = flat.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    else:
        owner = np.repeat(np.arange(n), size)
        raw = flat.to_numpy(zero_copy_only=False)
        vals = int_array(file, raw, field, rows[owner])
    kmax = int(size.max()) if n else 0
    out = np.full((n, max(kmax, 1)), -1, dtype=np.int64)
    if len(vals):
        r = np.repeat(np.arange(n), size)
        start = np.cumsum(size) - size
        out[r, np.arange(len(vals)) - start[r]] = vals
    return out


def json_blocks(path: str, block_bytes: int = 1 << 25) -> Iterator[tuple[int, "object"]]:
    """Parse JSON lines block by block with ``pyarrow.json``: ``(first line number, Table)``.

    Blocks end on a newline, so memory is bounded by the block (not the file).
    """
    import pyarrow as pa
    import pyarrow.json as pj

    if not os.path.exists(path):
        raise InputError(path, ("", "file not found"))
    line = 0
    with open(path, "rb") as fh:
        rest = b""
        while True:
            data = fh.read(block_bytes)
            buf = rest + data
            if not data:
                cut = len(buf)
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:
                    rest = buf
                    continue
            block, rest = buf[:cut], buf[cut:]
            if block.strip():
                try:
                    tab = pj.read_json(io.BytesIO(block), read_options=pj.ReadOptions(block_size=max(1 << 20, len(block) + 1)))
                    tab.column_names  # a key that is not UTF-8 fails here, not in the caller
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    msg = str(exc).splitlines()[0]
                    raise InputError(path, ("", f"cannot read JSON lines after line {line}: {msg}")) from None
                except UnicodeDecodeError:  # pyarrow's own message quotes the bytes that are not UTF-8
                    raise InputError(path, ("", f"cannot read JSON lines after line {line}: "
                                                "not valid UTF-8 text")) from None
                yield line, tab
                line += block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
            if not data:
                break
