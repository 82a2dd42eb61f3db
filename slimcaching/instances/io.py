"""Readers and writers for the JSON files of ``MODEL.md`` section 3.

Files ending in ``.gz`` are gzip-compressed (written with ``mtime=0`` so the
bytes are reproducible).  Every failure to read or decode becomes an
:class:`~slimcaching.errors.InputError` naming the file.
"""
from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

from ..errors import InputError
from .model import Instance, Placement
from .validate import PLACEMENT_FORMAT, instance_from_dict, placement_from_dict

__all__ = [
    "read_json", "write_json", "read_instance", "write_instance",
    "read_placement", "write_placement", "placement_to_dict",
]


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


def write_json(obj: Any, path: str | os.PathLike, *, indent: int | None = 1) -> None:
    """Write JSON (gzip when the name ends in ``.gz``), atomically via a temp file."""
    path = Path(path)
    text = json.dumps(obj, indent=indent, ensure_ascii=False, allow_nan=False) + "\n"
    data = text.encode("utf-8")
    if path.suffix == ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(data)
        data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_instance(path: str | os.PathLike) -> Instance:
    """Read and validate an instance file."""
    return instance_from_dict(read_json(path), file=str(path))


def write_instance(instance: Instance, path: str | os.PathLike) -> None:
    write_json(instance.to_dict(), path)


def read_placement(path: str | os.PathLike, instance: Instance) -> tuple[Placement, dict]:
    """Read and validate a placement file against ``instance``.

    Returns the placement and its informational fields (ignored by the evaluator).
    """
    return placement_from_dict(read_json(path), instance, file=str(path))


def placement_to_dict(instance: Instance, placement: Placement, **fields: Any) -> dict:
    """The ``slimcaching-placement/1`` object; ``fields`` are written after ``cache``."""
    d: dict[str, Any] = {"format": PLACEMENT_FORMAT, "instance": instance.name,
                         "cache": placement.to_cache(instance)}
    d.update(fields)
    return d


def write_placement(instance: Instance, placement: Placement, path: str | os.PathLike, **fields: Any) -> None:
    write_json(placement_to_dict(instance, placement, **fields), path)
