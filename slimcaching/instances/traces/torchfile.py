"""Read a ``torch.save`` file without PyTorch and without running its pickle.

``torch.save`` (the zip format, PyTorch >= 1.6) writes ``<name>/data.pkl``
(a protocol-2 pickle) and one entry ``<name>/data/<key>`` per tensor
storage.  Tensors pickle as ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, hooks[, metadata])``; a storage is the
persistent id ``("storage", torch.<Type>Storage, key, location, numel)``
(``torch/serialization.py``).  The unpickler here resolves only those
names, ``collections.OrderedDict`` and ``torch.Size``; anything else is
refused, so a file cannot run code.  Tensors come back as lazy
:class:`LazyTensor` s whose ``numpy()`` reads the storage on demand, so a dump
of many records is held one record at a time.
"""
from __future__ import annotations

import collections
import pickle
import zipfile

import numpy as np

from ...errors import InputError

__all__ = ["load_torch_file", "LazyTensor"]

_DTYPES = {"DoubleStorage": np.float64, "FloatStorage": np.float32, "HalfStorage": np.float16,
           "BFloat16Storage": np.uint16, "LongStorage": np.int64, "IntStorage": np.int32,
           "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_}


class _StorageType:
    def __init__(self, name: str):
        self.name, self.dtype = name, np.dtype(_DTYPES[name])


class _Storage:
    def __init__(self, zf: zipfile.ZipFile, entry: str, dtype: np.dtype):
        self.zf, self.entry, self.dtype = zf, entry, dtype

    def array(self) -> np.ndarray:
        return np.frombuffer(self.zf.read(self.entry), dtype=self.dtype)


class LazyTensor:
    """A tensor of a ``torch.save`` file: ``shape``, ``dtype`` and ``numpy()``."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.shape, self.stride = storage, int(offset), tuple(size), tuple(stride)

    @property
    def dtype(self) -> np.dtype:
        return self.storage.dtype

    def numpy(self) -> np.ndarray:
        data = self.storage.array()
        if not self.shape:
            return data[self.offset:self.offset + 1].reshape(())
        need = self.offset + sum((s - 1) * st for s, st in zip(self.shape, self.stride)) + 1
        if any(s == 0 for s in self.shape):
            return np.zeros(self.shape, dtype=data.dtype)
        if need > len(data):
            raise ValueError("tensor extends past its storage")
        item = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=tuple(st * item for st in self.stride))
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    return LazyTensor(storage, storage_offset, size, stride)


def load_torch_file(path: str):
    """The object a ``torch.save`` zip file holds, tensors as :class:`LazyTensor`.

    Raises
    ------
    InputError
        Not a zip ``torch.save`` file, a legacy (pre-1.6) file, or a pickle
        naming anything but tensors, storages and plain containers.
    """
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except (zipfile.BadZipFile, OSError):
        raise InputError(path, ("", "not a torch.save zip file (files written by PyTorch < 1.6 are not read)")) \
            from None
    pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
    if not pkl:
        raise InputError(path, ("", "not a torch.save file: no data.pkl in the archive"))
    prefix = pkl[0][: -len("data.pkl")]

    class _Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if module == "torch" and name in _DTYPES:
                return _StorageType(name)
            if module == "collections" and name == "OrderedDict":
                return collections.OrderedDict
            if module == "torch" and name == "Size":
                return tuple
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        def persistent_load(self, pid):
            if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
                raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
            stype, key = pid[1], pid[2]
            if not isinstance(stype, _StorageType):
                raise pickle.UnpicklingError("unknown storage type")
            return _Storage(zf, f"{prefix}data/{key}", stype.dtype)

    try:
        with zf.open(pkl[0]) as fh:
            return _Unpickler(fh).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise InputError(path, ("", f"cannot read torch.save file: {exc}")) from None
