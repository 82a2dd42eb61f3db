"""Reading and writing JSON files, for every file the project reads or writes.

Files ending in ``.gz`` are gzip-compressed (written with ``mtime=0`` so the
bytes are reproducible).  Every failure to read or decode becomes an
:class:`~slimcaching.errors.InputError` naming the file.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["read_json", "write_json", "write_text", "write_bytes", "content_hash"]


def read_json(path: str | os.PathLike) -> Any:
    """Decode a ``.json`` or ``.json.gz`` file, or raise :class:`InputError`."""
    path = str(path)
    try:
        if path.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return json.load(fh)
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except IsADirectoryError:
        raise InputError(path, ("", "is a directory, expected a JSON file")) from None
    except json.JSONDecodeError as exc:
        raise InputError(path, ("$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")) from None
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, OSError) as exc:
        raise InputError(path, ("", f"cannot read file: {exc}")) from None


def write_bytes(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` atomically via a temporary file (the one output path of the project)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_text(text: str, path: str | os.PathLike) -> None:
    """Write UTF-8 ``text`` to ``path`` (gzip when the name ends in ``.gz``) through :func:`write_bytes`."""
    data = text.encode("utf-8")
    if str(path).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    write_bytes(data, path)


def write_json(obj: Any, path: str | os.PathLike, *, indent: int | None = 1) -> None:
    """Write JSON (gzip when the name ends in ``.gz``) through :func:`write_text`."""
    write_text(json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n", path)


def content_hash(doc: dict, *, ignore: tuple[str, ...] = ("name", "metadata")) -> str:
    """SHA-256 (hex, first 16 chars) of the canonical JSON of ``doc`` without the ``ignore`` keys.

    Two files describing the same optimisation problem share a hash, whatever
    their name, provenance or key order; results are keyed by it.
    """
    d = {k: v for k, v in doc.items() if k not in ignore}
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
