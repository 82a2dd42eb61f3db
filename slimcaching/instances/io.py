"""Readers and writers for the instance and placement files of ``docs/model.md`` section 3.

Decoding and writing JSON (``.gz`` included) is :mod:`slimcaching.fileio`;
every failure to read or decode becomes an
:class:`~slimcaching.errors.InputError` naming the file.
"""
from __future__ import annotations

import os
from typing import Any

from ..fileio import read_json, write_json
from .model import Instance, Placement
from .validate import PLACEMENT_FORMAT, instance_from_dict, placement_from_dict

__all__ = [
    "read_json", "write_json", "read_instance", "write_instance",
    "read_placement", "write_placement", "placement_to_dict",
]


def read_instance(path: str | os.PathLike) -> Instance:
    """Read and validate an instance file: ``.json``, ``.json.gz`` or columnar ``.npz`` (:mod:`.serial`)."""
    if str(path).lower().endswith(".npz"):
        from .serial import read_columnar

        return read_columnar(path)
    return instance_from_dict(read_json(path), file=str(path))


def write_instance(instance: Instance, path: str | os.PathLike) -> None:
    """Write an instance file by extension: ``.npz`` columnar, else JSON (``.gz``: gzip)."""
    from .serial import write_instance_file

    write_instance_file(instance, path)


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
