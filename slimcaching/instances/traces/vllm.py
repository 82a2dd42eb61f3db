"""``npy`` / ``exflow`` traces: routed-expert arrays, read in bounded windows.

* vLLM (``--enable-return-routed-experts``) returns, per request, an integer
  array ``[tokens, moe_layers, top_k]`` of expert ids (``int16`` in
  ``[0, num_experts)``; ``routed_experts`` for generated tokens,
  ``prompt_routed_experts`` for the prompt).  Saved with ``np.save`` (one
  request per ``.npy``, or a folder of them) or ``np.savez`` (one request per
  array of the ``.npz``); the user of a token is its file or array name.
* ExFlow keeps the top-1 expert only: ``[tokens, layers]``.

A ``.npy`` is read through ``np.memmap`` windows of ``chunk_rows`` tokens
(each window unmapped before the next, so resident memory stays bounded); a
``.npz`` member is decompressed as a stream.  Token = row of the array.
"""
from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...fileio import npy_header
from .source import Source, files_of
from .stream import Chunk

__all__ = ["NpySource", "npy_header", "ArrayInfo"]


class ArrayInfo:
    """Shape, dtype and byte offset of one array (a ``.npy`` file or an ``.npz`` member)."""

    def __init__(self, file: str, name: str, shape: tuple, dtype: np.dtype, offset: int, member: str | None):
        self.file, self.name, self.shape, self.dtype, self.offset, self.member = file, name, shape, dtype, offset, member


class NpySource(Source):
    """A ``.npy`` file, a ``.npz`` archive or a folder of either; one user per array."""

    def __init__(self, path: str, fmt: str = "npy"):
        super().__init__(path, "file name" if fmt == "npy" else "file name")
        self.fmt = fmt
        self.arrays = self._scan()
        for a in self.arrays:
            self.users.code(a.name)
        self.info = {"token": "row of the array (position in the request)",
                     "user": "file name", "user_rule": "file stem (.npy) or array name (.npz)"}

    def _scan(self) -> list[ArrayInfo]:
        out = []
        files = files_of(self.path, (".npy", ".npz"), ".npy/.npz")
        for f in files:
            if f.suffix.lower() == ".npz":
                try:
                    zf = zipfile.ZipFile(f)
                except (zipfile.BadZipFile, OSError) as exc:
                    raise InputError(str(f), ("", f"not a .npz archive: {exc}")) from None
                with zf:
                    for m in zf.infolist():
                        if not m.filename.endswith(".npy"):
                            continue
                        with zf.open(m) as fh:
                            shape, dtype, off = npy_header(fh, f"{f}[{m.filename}]", m.file_size)
                        out.append(ArrayInfo(str(f), m.filename[:-4], shape, dtype, off, m.filename))
            else:
                with open(f, "rb") as fh:
                    shape, dtype, off = npy_header(fh, str(f), f.stat().st_size)
                out.append(ArrayInfo(str(f), f.stem, shape, dtype, off, None))
        if not out:
            raise InputError(self.path, ("", "empty trace: no arrays"))
        for a in out:
            self._check_shape(a)
        return out

    def _check_shape(self, a: ArrayInfo) -> None:
        where = a.file if a.member is None else f"{a.file}[{a.member}]"
        if not np.issubdtype(a.dtype, np.integer):
            hint = (" (floating counts look like MoE-Infinity activation counts: use --format counts-npy)"
                    if np.issubdtype(a.dtype, np.floating) else "")
            raise InputError(where, ("", f"expected integer expert ids, got {a.dtype}{hint}"))
        if self.fmt == "exflow" and len(a.shape) != 2:
            raise InputError(where, ("", f"an ExFlow trace is [tokens, layers] (top-1 expert ids), got shape {a.shape}"))
        if len(a.shape) not in (2, 3):
            raise InputError(where, ("", f"expected [tokens, layers, top_k] (or [tokens, layers] for top-1), "
                                         f"got shape {a.shape}"))

    def token_ranges(self, chunk_rows: int) -> dict[int, tuple[int, int]]:
        """From the headers alone: every array's tokens are rows ``0..T-1``."""
        out: dict[int, tuple[int, int]] = {}
        for a in self.arrays:
            if a.shape[0]:
                out[self.users.code(a.name)] = (0, a.shape[0] - 1)
        return out

    @property
    def width(self) -> int:
        return max(a.shape[2] if len(a.shape) == 3 else 1 for a in self.arrays)

    def chunks(self, chunk_rows: int) -> Iterator[Chunk]:
        for a in self.arrays:
            u = self.users.code(a.name)
            L = a.shape[1]
            K = a.shape[2] if len(a.shape) == 3 else 1
            tok_rows = max(1, int(chunk_rows) // max(L, 1))
            for start, block in _windows(a, tok_rows):
                n = block.shape[0]
                if n == 0:
                    continue
                # layer-major rows: each (user, layer) group is one contiguous run
                tt = np.tile(np.arange(start, start + n, dtype=np.int64), L)
                ll = np.repeat(np.arange(L, dtype=np.int64), n)
                ex = np.ascontiguousarray(block.reshape(n, L, K).transpose(1, 0, 2)).reshape(n * L, K)
                yield Chunk(user=np.full(n * L, u, dtype=np.int64), token=tt, layer=ll, experts=ex, row=tt)


def _windows(a: ArrayInfo, tok_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    T = a.shape[0]
    row_shape = a.shape[1:]
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * a.dtype.itemsize
    if a.member is None:
        for start in range(0, T, tok_rows):
            n = min(tok_rows, T - start)
            mm = np.memmap(a.file, dtype=a.dtype, mode="r", offset=a.offset + start * row_bytes,
                           shape=(n,) + row_shape)
            block = np.array(mm)            # copy out, then unmap the window
            del mm
            yield start, block
        return
    with zipfile.ZipFile(a.file) as zf, zf.open(a.member) as fh:
        fh.read(a.offset)
        for start in range(0, T, tok_rows):
            n = min(tok_rows, T - start)
            buf = fh.read(n * row_bytes)
            if len(buf) < n * row_bytes:
                raise InputError(f"{a.file}[{a.member}]", ("", f"truncated array: expected {T} rows, "
                                                              f"ended after {start + len(buf) // max(row_bytes, 1)}"))
            yield start, np.frombuffer(buf, dtype=a.dtype).reshape((n,) + row_shape)


def array_kind(path: str, experts: int | None = None, top_k: int | None = None) -> str:
    """``npy``, ``exflow`` or ``counts-npy`` for an array file, from its header alone.

    Float arrays and integer arrays whose last axis is the model's expert count
    (wider than its top-k) are count arrays ``[sequences, layers, experts]``.
    """
    p = Path(path)
    f = next(iter(sorted(p.glob("*.np[yz]")))) if p.is_dir() else p
    try:
        if f.suffix.lower() == ".npz":
            with zipfile.ZipFile(f) as zf:
                m = next(m for m in zf.infolist() if m.filename.endswith(".npy"))
                with zf.open(m) as fh:
                    shape, dtype, _ = npy_header(fh, str(f), None)
        else:
            with open(f, "rb") as fh:
                shape, dtype, _ = npy_header(fh, str(f), None)
    except (StopIteration, OSError, zipfile.BadZipFile):
        return "npy"
    if np.issubdtype(dtype, np.floating):
        return "counts-npy"
    if len(shape) == 2:
        return "exflow"
    if len(shape) == 3 and experts is not None and top_k is not None and shape[2] == experts and experts > top_k:
        return "counts-npy"
    return "npy"
