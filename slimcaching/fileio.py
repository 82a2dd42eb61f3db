"""Reading and writing files: the one input path and the one output path of the project.

Reading
-------
:func:`read_json` decodes ``.json`` and ``.json.gz`` files strictly: a key
repeated in one object, ``NaN`` / ``Infinity``, an integer literal of more
than 4300 digits and nesting deeper than Python's recursion limit are
rejected with one :class:`~slimcaching.errors.InputError` naming the file.
Every input is size-capped before it is held in memory (:func:`read_bytes`):

* at most :func:`input_limit` bytes, decompressed (default 4 GiB; the
  environment variable ``SLIMCACHING_MAX_INPUT_BYTES`` changes it, e.g.
  ``16GiB``);
* gzip is decompressed as a stream, and a stream that has produced more than
  64 MiB at more than :func:`gzip_ratio_limit` times its compressed size
  (default 200; real instance files compress 10-25 times) is refused as a
  likely gzip bomb (``SLIMCACHING_MAX_GZIP_RATIO`` changes it).  A bomb thus
  costs at most about 64 MiB of memory however far it would expand.

:func:`read_npy` checks a ``.npy`` header against the file size before
allocating the array it describes.

Writing
-------
:func:`write_bytes`, :func:`write_text`, :func:`write_json` and
:func:`write_with` (for libraries that write by file name) are the only way
the project writes a file.  For a path that names

* a new file or a regular file: the content goes to a temporary file in the
  same folder, which then replaces the path atomically (a reader never sees a
  half-written file); an existing file keeps its permission bits (and, for
  root, its owner);
* a symbolic link: the link is followed and its final target written as above
  (the link stays a link);
* a device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe): the
  content is written through it, never renamed over it; ``/dev/full`` reports
  a full disk;
* a directory: refused.

A path that is an input of the running command (:func:`protect_inputs`, or
``inputs=``) is never written: that would destroy the input.  Every operating
system error (read-only or missing folder, full disk, file too large) becomes
an :class:`~slimcaching.errors.OutputError` naming the path, and no temporary
file is left behind, also on error or interruption.

Files ending in ``.gz`` are gzip-compressed (written with ``mtime=0`` so the
bytes are reproducible).
"""
from __future__ import annotations

import contextlib
import contextvars
import gzip
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
import zlib
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import InputError, OutputError

__all__ = ["read_json", "read_bytes", "open_input", "loads_json", "read_npy", "npy_header", "input_limit", "gzip_ratio_limit",
           "parse_size", "write_json", "write_text", "write_bytes", "write_with", "check_output",
           "protect_inputs", "content_hash", "MAX_INPUT_ENV", "GZIP_RATIO_ENV"]

MAX_INPUT_ENV = "SLIMCACHING_MAX_INPUT_BYTES"
GZIP_RATIO_ENV = "SLIMCACHING_MAX_GZIP_RATIO"
DEFAULT_MAX_INPUT = 4 * 2**30
DEFAULT_GZIP_RATIO = 200.0
GZIP_RATIO_AFTER = 64 * 2**20   # the ratio is checked once this much has been decompressed
_CHUNK = 2**20

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


# ------------------------------------------------------------------ limits
def parse_size(text: str, name: str = "size") -> int:
    """Bytes from ``"4GiB"``, ``"500MB"``, ``"1e9"`` or ``"123"`` (raise :class:`InputError` otherwise)."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise InputError(name, ("", f"must be a size such as 4GiB, 500MB or 1000000 (bytes), got {text!r}"))
    value = float(m.group(1)) * _UNITS[unit]
    if not math.isfinite(value) or value < 1:
        raise InputError(name, ("", f"must be at least one byte, got {text!r}"))
    return int(value)


def input_limit() -> int:
    """Largest input, in bytes after decompression: ``$SLIMCACHING_MAX_INPUT_BYTES`` or 4 GiB."""
    v = os.environ.get(MAX_INPUT_ENV)
    return DEFAULT_MAX_INPUT if v in (None, "") else parse_size(v, MAX_INPUT_ENV)


def gzip_ratio_limit() -> float:
    """Largest accepted decompressed / compressed size ratio: ``$SLIMCACHING_MAX_GZIP_RATIO`` or 200."""
    v = os.environ.get(GZIP_RATIO_ENV)
    if v in (None, ""):
        return DEFAULT_GZIP_RATIO
    try:
        r = float(v)
    except ValueError:
        r = math.nan
    if not (math.isfinite(r) and r >= 1):
        raise InputError(GZIP_RATIO_ENV, ("", f"must be a number >= 1, got {v!r}"))
    return r


# ------------------------------------------------------------------ reading
def _read_error(path: str, exc: BaseException) -> InputError:
    if isinstance(exc, FileNotFoundError):
        return InputError(path, ("", "file not found"))
    if isinstance(exc, IsADirectoryError):
        return InputError(path, ("", "is a directory, expected a file"))
    if isinstance(exc, (gzip.BadGzipFile, zlib.error, EOFError)):
        return InputError(path, ("", f"not a valid gzip file: {exc or 'truncated'}"))
    if isinstance(exc, OSError):
        return InputError(path, ("", f"cannot read file: {exc.strerror or exc}"))
    return InputError(path, ("", f"cannot read file: {exc}"))


class _Counted(io.RawIOBase):
    """``raw``, counting the bytes read from it (a pipe has no position to ask)."""

    def __init__(self, raw: io.BufferedReader):
        self._raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._raw.readinto(b)
        self.count += n or 0
        return n


class _CappedGzip(io.RawIOBase):
    """A binary stream of the decompressed bytes of a gzip file, refusing to exceed the input limits."""

    def __init__(self, path: str, raw: io.BufferedReader):
        self.path, self._raw = path, _Counted(raw)
        self._gz = gzip.GzipFile(fileobj=self._raw, mode="rb")
        self._limit, self._ratio = input_limit(), gzip_ratio_limit()
        self.produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        try:
            n = self._gz.readinto(b)
        except (gzip.BadGzipFile, zlib.error, EOFError, OSError) as exc:
            raise _read_error(self.path, exc) from None
        self.produced += n
        if self.produced > self._limit:
            raise InputError(self.path, ("", f"decompresses to more than {self._limit} bytes, the input limit "
                                             f"(set {MAX_INPUT_ENV} to raise it)"))
        used = max(1, self._raw.count)
        if self.produced > GZIP_RATIO_AFTER and self.produced > self._ratio * used:
            raise InputError(self.path, ("", f"decompresses more than {self._ratio:g} times its compressed size "
                                             f"({self.produced} bytes from {used}): refusing a likely gzip bomb "
                                             f"(set {GZIP_RATIO_ENV} to allow it)"))
        return n

    def close(self) -> None:
        try:
            self._gz.close()
            self._raw.close()
        finally:
            super().close()


@contextlib.contextmanager
def open_input(path: str | os.PathLike) -> Iterator[io.BufferedIOBase]:
    """A binary stream of ``path`` (decompressed when it ends in ``.gz``) that enforces the input limits.

    Raises
    ------
    InputError
        Missing or unreadable file, invalid gzip data, or a file (decompressed)
        larger than :func:`input_limit`, or a likely gzip bomb.
    """
    path = os.fspath(path)
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise _read_error(path, exc) from None
    with raw:
        st = os.fstat(raw.fileno())
        if stat.S_ISDIR(st.st_mode):
            raise _read_error(path, IsADirectoryError())
        if path.lower().endswith(".gz"):
            with io.BufferedReader(_CappedGzip(path, raw), _CHUNK) as stream:
                yield stream
            return
        limit = input_limit()
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:
            raise InputError(path, ("", f"file has {st.st_size} bytes, more than the input limit of {limit} "
                                        f"(set {MAX_INPUT_ENV} to raise it)"))
        yield raw


def read_bytes(path: str | os.PathLike, *, first: Callable[[bytes], str | None] | None = None) -> bytearray:
    """All bytes of ``path`` (decompressed for ``.gz``) within the input limits; see :func:`open_input`.

    ``first``, when given, looks at the first chunk read (up to 1 MiB) and
    returns a rule the content breaks, or ``None``: a file that is plainly not
    of the expected kind (``/dev/zero``, a binary file) fails at once instead
    of after reading up to the input limit.
    """
    path = os.fspath(path)
    limit = input_limit()
    buf = bytearray()
    with open_input(path) as fh:
        try:
            while chunk := fh.read(_CHUNK):
                if first is not None and not buf and (rule := first(chunk)) is not None:
                    raise InputError(path, ("$", rule))
                buf += chunk
                if len(buf) > limit:  # devices and pipes have no size to check up front
                    raise InputError(path, ("", f"has more than {limit} bytes, the input limit "
                                                f"(set {MAX_INPUT_ENV} to raise it)"))
        except OSError as exc:
            raise _read_error(path, exc) from None
    return buf


class _Reject(ValueError):
    """A strict-JSON rule broken while decoding (turned into an InputError by :func:`loads_json`)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Reject("duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise _Reject("constant")


class _Marked(dict):
    """An object with a repeated key, found again by :func:`_locate`."""

    key: str = ""


class _Constant(float):
    """A ``NaN`` / ``Infinity`` literal, found again by :func:`_locate`."""

    name: str = ""


def _mark_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for k, _ in pairs:
        if k in seen:
            d = _Marked(pairs)
            d.key = k
            return d
        seen.add(k)
    return dict(pairs)


def _mark_constant(name: str) -> float:
    v = _Constant(float(name.replace("Infinity", "inf")))
    v.name = name
    return v


def _locate(doc: Any, path: str = "$") -> tuple[str, str] | None:
    """The JSON path and rule of the first marked value of ``doc``, in document order."""
    if isinstance(doc, _Marked):
        return f"{path}.{doc.key}", f"duplicate key {doc.key!r} (each key may appear once in an object)"
    if isinstance(doc, _Constant):
        return path, f"{doc.name} is not valid JSON (numbers must be finite)"
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for k, v in items:
        found = _locate(v, f"{path}.{k}" if isinstance(doc, dict) else f"{path}[{k}]")
        if found:
            return found
    return None


def loads_json(data: bytes | bytearray | str, file: str = "<input>") -> Any:
    """Decode JSON strictly, or raise :class:`InputError` naming the JSON path of the problem.

    Rejected beyond the JSON grammar: a key repeated in one object (Python's
    ``json`` would keep the last one silently), ``NaN`` and ``Infinity``,
    integer literals beyond Python's int-string conversion limit (4300
    digits), and nesting deeper than the recursion limit.
    """
    try:
        return json.loads(data, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except _Reject:  # decode again, marking the offending values, to name their path
        found = _locate(json.loads(data, object_pairs_hook=_mark_duplicates, parse_constant=_mark_constant))
        raise InputError(file, found or ("$", "not strict JSON")) from None
    except json.JSONDecodeError as exc:
        raise InputError(file, ("$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")) from None
    except RecursionError:
        raise InputError(file, ("$", f"nested too deeply (more than about {sys.getrecursionlimit()} levels)")) from None
    except UnicodeDecodeError as exc:
        raise InputError(file, ("$", f"not UTF-8 text: {exc.reason} at byte {exc.start}")) from None
    except ValueError as exc:  # an integer literal beyond the int-string conversion limit
        raise InputError(file, ("$", f"number out of range: {str(exc).split(';')[0]}")) from None


def _json_start(chunk: bytes) -> str | None:
    """A rule broken when ``chunk`` cannot begin a JSON document (cheap: whitespace, then the first byte)."""
    head = chunk.lstrip(b" \t\r\n")
    if head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark: json reports it precisely
        return None
    if head and head[:1] not in b'{["-0123456789tfn':
        return f"not valid JSON: unexpected byte {head[:1]!r} at the start"
    return None


def read_json(path: str | os.PathLike) -> Any:
    """Decode a ``.json`` or ``.json.gz`` file strictly, or raise :class:`InputError` (see the module notes)."""
    path = os.fspath(path)
    return loads_json(read_bytes(path, first=_json_start), path)


def npy_header(fh: Any, file: str, available: int | None) -> tuple[tuple, Any, int]:
    """Read a ``.npy`` header from ``fh``: ``(shape, dtype, data offset)``, checked before anything is allocated.

    ``available`` is the number of bytes the file (or archive member) holds;
    a header whose shape and dtype need more or fewer data bytes than that is
    refused, as are object arrays (they would need pickle), Fortran order and
    malformed headers.  The one check behind :func:`read_npy` and the
    memory-mapped trace readers.
    """
    import numpy as np
    from numpy.lib import format as npf

    try:
        version = npf.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npf.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):  # 3.0 differs only by a UTF-8 header (ASCII in practice)
            shape, fortran, dtype = npf.read_array_header_2_0(fh)
        else:
            raise InputError(file, ("", f"unsupported .npy format version {version[0]}.{version[1]}"))
    except InputError:
        raise
    except (OSError, EOFError) as exc:
        raise _read_error(file, exc) from None
    except Exception as exc:  # numpy parses the header with ast/tokenize: any of their errors
        raise InputError(file, ("", f"not a valid .npy header: {type(exc).__name__}")) from None
    if dtype.hasobject:
        raise InputError(file, ("", "holds Python objects (pickles are not read); expected a numeric array"))
    if fortran and len(shape) > 1:
        raise InputError(file, ("", "Fortran-ordered arrays are not supported; save with np.save of a C array"))
    offset = fh.tell()
    need = math.prod(int(v) for v in shape) * dtype.itemsize
    if available is not None and need != available - offset:
        raise InputError(file, ("", f"header claims shape {tuple(shape)} of {dtype} ({need} bytes) but the "
                                    f"file holds {max(available - offset, 0)} bytes of data"))
    return tuple(int(v) for v in shape), np.dtype(dtype), offset


def read_npy(path: str | os.PathLike, *, mmap: bool = False) -> Any:
    """Load a ``.npy`` array (no pickles) after checking its header against the file size.

    With ``mmap=True`` (plain files only) the data is memory-mapped read-only
    instead of read, for arrays larger than memory.

    Raises
    ------
    InputError
        An unreadable file, a malformed header, an object array, or a header
        whose shape and dtype need more (or fewer) bytes than the file holds:
        nothing is allocated for a shape the file cannot back.
    """
    import numpy as np

    path = os.fspath(path)
    with contextlib.ExitStack() as stack:
        if path.lower().endswith(".gz"):
            fh = io.BytesIO(read_bytes(path))
            size = len(fh.getbuffer())
            mmap = False
        else:
            fh = stack.enter_context(open_input(path))
            size = os.fstat(fh.fileno()).st_size
        shape, dtype, offset = npy_header(fh, path, size)
        try:
            if mmap:
                return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
        except (OSError, EOFError, ValueError) as exc:
            raise InputError(path, ("", f"not a valid .npy file: {str(exc).splitlines()[0] if str(exc) else exc!r}")) from None


# ------------------------------------------------------------------ writing: protection of inputs
_PROTECTED: contextvars.ContextVar[tuple[tuple[int, int], ...]] = contextvars.ContextVar(
    "slimcaching_protected_inputs", default=())


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


_FOLDER_FILES = 100_000  # files of an input folder that are protected (a suite holds a few hundred)


def _ids(paths: Iterable[str | os.PathLike | None]) -> set[tuple[int, int]]:
    """Identities of the regular files among ``paths`` and inside the folders among them."""
    out = set()
    for p in paths:
        if p is None:
            continue
        p = os.fspath(p)
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode):
            out.add((st.st_dev, st.st_ino))
        elif stat.S_ISDIR(st.st_mode):
            seen = 0
            for root, _dirs, files in os.walk(p):
                for name in files:
                    fid = _file_id(os.path.join(root, name))
                    if fid is not None:
                        out.add(fid)
                    seen += 1
                if seen > _FOLDER_FILES:
                    break
    return out


@contextlib.contextmanager
def protect_inputs(paths: Iterable[str | os.PathLike | None]) -> Iterator[None]:
    """Within the block, no write of this module may replace one of the files ``paths``.

    The command line wraps each command in it with the command's input files,
    so ``report DB -o DB`` or ``solve INSTANCE -o INSTANCE`` cannot destroy
    the input, wherever in the library the write happens.  Files are compared
    by identity (device and inode), so another name, a symbolic link or a hard
    link of an input is protected too; a folder protects the files in it.
    """
    token = _PROTECTED.set(_PROTECTED.get() + tuple(_ids(paths)))
    try:
        yield
    finally:
        _PROTECTED.reset(token)


def _refuse_input(path: str, target: str, inputs: Sequence[str | os.PathLike]) -> None:
    fid = _file_id(target)
    if fid is not None and (fid in _PROTECTED.get() or fid in _ids(inputs)):
        raise InputError(path, ("", "is an input of this command; refusing to overwrite it "
                                    "(choose another output file)"))


def _nearest_dir(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(d) and os.path.dirname(d) != d:
        d = os.path.dirname(d)
    return d


def check_output(path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = (), option: str = "--output",
                 folder: bool = False) -> None:
    """Check, before any work, that ``path`` can be written (nothing is created).

    Parameters
    ----------
    path : path-like
        The output file (``folder=False``) or output folder (``folder=True``).
    inputs : paths
        The command's input files; ``path`` must not be one of them.
    option : str
        The option naming ``path``, for the message.

    An output file must be in an existing folder; an output folder is
    created when needed, so only its nearest existing ancestor must be
    writable.

    Raises
    ------
    InputError
        ``path`` is one of ``inputs`` (exit code 2: a bad option value).
    OutputError
        ``path`` is a directory (for a file) or a file (for a folder), its
        folder does not exist (for a file), or it cannot be written.
    """
    path = os.fspath(path)
    if path == "":
        raise InputError(option, ("", "must not be empty"))
    target = os.path.realpath(path)
    if not folder:
        fid = _file_id(target)
        if fid is not None and (fid in _ids(inputs) or fid in _PROTECTED.get()):
            raise InputError(option, ("", f"{path!r} is an input of this command; refusing to overwrite it"))
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode) != folder:
            raise OutputError(path, "is a directory" if not folder else "is not a directory")
        if folder or stat.S_ISREG(st.st_mode):
            where = target if folder else os.path.dirname(target)
        else:  # device or FIFO: written through
            if not os.access(target, os.W_OK):
                raise OutputError(path, "permission denied")
            return
    elif folder:
        where = _nearest_dir(target)
    else:
        where = os.path.dirname(target)
        if not os.path.isdir(where):
            raise OutputError(path, f"directory {os.path.dirname(path) or where!r} does not exist")
    if not os.path.isdir(where):
        raise OutputError(path, f"{where!r} is not a directory")
    if not os.access(where, os.W_OK | os.X_OK):
        ro = os.statvfs(where).f_flag & os.ST_RDONLY
        raise OutputError(path, f"{'read-only file system' if ro else 'permission denied'} ({where})")


# ------------------------------------------------------------------ writing: the one output path
@contextlib.contextmanager
def _output_errors(path: str) -> Iterator[None]:
    """Turn any operating-system error of the block into an :class:`OutputError` naming ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(path, exc.strerror or str(exc)) from None


def _temp_name(folder: str, name: str) -> str:
    return os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")


def _finish_regular(tmp: str, target: str, st: os.stat_result | None) -> None:
    """Give ``tmp`` the mode (and owner) of the file it replaces, then rename it over ``target``."""
    if st is not None:
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        if hasattr(os, "chown") and os.geteuid() == 0:
            with contextlib.suppress(OSError):
                os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, target)


def _target(path: str, inputs: Sequence[str | os.PathLike]) -> tuple[str, os.stat_result | None]:
    """The file to write for ``path`` (symbolic links followed) and its status (``None`` when new)."""
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(path, "is a directory")
    _refuse_input(path, target, inputs)
    return target, st


def _publish(path: str | os.PathLike, produce: Callable[[io.BufferedWriter], None],
             inputs: Sequence[str | os.PathLike]) -> None:
    path = os.fspath(path)
    tmp = None
    try:
        with _output_errors(path):
            target, st = _target(path, inputs)
            if st is not None and not stat.S_ISREG(st.st_mode):  # device, FIFO: write through, never replace
                with open(target, "wb") as fh:
                    produce(fh)
                return
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            tmp = _temp_name(folder, os.path.basename(target))
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
            with open(fd, "wb") as fh:
                produce(fh)
            _finish_regular(tmp, target, st)
            tmp = None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes(data: bytes, path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Write ``data`` to ``path``: the one output path of the project (see the module notes).

    Parameters
    ----------
    data : bytes
    path : path-like
        A new or regular file (replaced atomically), a symbolic link (its
        target is written), or a device or FIFO (written through).
    inputs : paths
        Files that must not be overwritten, in addition to those of
        :func:`protect_inputs`.

    Raises
    ------
    InputError
        ``path`` is an input of the running command.
    OutputError
        Any operating system error (no temporary file is left behind).
    """
    _publish(path, lambda fh: fh.write(data), inputs)


def write_text(text: str, path: str | os.PathLike, *, inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Write UTF-8 ``text`` to ``path`` (gzip when the name ends in ``.gz``) through :func:`write_bytes`."""
    data = text.encode("utf-8")
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    write_bytes(data, path, inputs=inputs)


def dumps_json(obj: Any, *, indent: int | None = 1) -> str:
    """JSON text as written by the project: UTF-8 where possible, never NaN or Infinity."""
    try:
        text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False)
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate read from a \\udXXX escape: keep it escaped
        text = json.dumps(obj, indent=indent, ensure_ascii=True, allow_nan=False)
    return text


def write_json(obj: Any, path: str | os.PathLike, *, indent: int | None = 1,
               inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Write JSON (gzip when the name ends in ``.gz``) through :func:`write_text`.

    Raises
    ------
    ValueError
        ``obj`` holds a non-finite float (not JSON; never written).
    """
    write_text(dumps_json(obj, indent=indent) + "\n", path, inputs=inputs)


def write_with(path: str | os.PathLike, writer: Callable[[str], Any], *,
               inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Let ``writer(name)`` write a file by name (Pyomo, pyarrow), then publish it at ``path``.

    ``writer`` writes into a private temporary folder, under the base name of
    ``path``; the file then takes the place of ``path`` like a
    :func:`write_bytes` output.  Extra files the writer puts next to it (the
    ``.row`` / ``.col`` names of an NL model) are moved next to ``path`` when
    ``path`` is a regular file, and dropped when it is a device or a FIFO.
    """
    path = os.fspath(path)
    tmpdir = None
    try:
        with _output_errors(path):
            target, st = _target(path, inputs)
            through = st is not None and not stat.S_ISREG(st.st_mode)
            folder = os.path.dirname(target)
            if not through:
                os.makedirs(folder, exist_ok=True)
            tmpdir = tempfile.mkdtemp(prefix=".slimcaching-", suffix=".tmp", dir=None if through else folder)
            name = os.path.basename(target)
            writer(os.path.join(tmpdir, name))
            main = os.path.join(tmpdir, name)
            if through:
                with open(main, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                return
            for extra in sorted(os.listdir(tmpdir)):
                if extra != name:
                    dest, dest_st = _target(os.path.join(folder, extra), inputs)
                    _finish_regular(os.path.join(tmpdir, extra), dest, dest_st)
            _finish_regular(main, target, st)
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def content_hash(doc: dict, *, ignore: tuple[str, ...] = ("name", "metadata")) -> str:
    """SHA-256 (hex, first 16 chars) of the canonical JSON of ``doc`` without the ``ignore`` keys.

    Two files describing the same optimisation problem share a hash, whatever
    their name, provenance or key order; results are keyed by it.
    """
    d = {k: v for k, v in doc.items() if k not in ignore}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

