"""The published JSON Schemas (draft 2020-12) of the project's files and command outputs.

``slimcaching schema NAME`` prints one; :func:`load_schema` returns it as a
dict, ready for any JSON Schema validator (``jsonschema.Draft202012Validator``).
A schema that refers to another shipped schema (the ``solve`` output is a
placement) carries it under ``$defs`` with its own ``$id`` (a bundled
schema), so each printed schema stands alone.

The schemas state the structure of a file: required fields, types, ranges of
single values.  Rules that relate fields (sums of probabilities, unique names,
ids below a count given elsewhere, list lengths equal to the number of layers)
stay in the validators (:mod:`slimcaching.instances.validate`,
:mod:`slimcaching.moe2.instance`), the one place for them; every file a
validator rejects for a structural rule, the schema rejects too
(``tests/test_schemas.py``).
"""
from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

from ..errors import InputError

__all__ = ["SCHEMAS", "schema_names", "load_schema", "schema_text"]

SCHEMAS: dict[str, str] = {
    "slimcaching-instance/1": "slimcaching-instance-1.schema.json",
    "slimcaching-placement/1": "slimcaching-placement-1.schema.json",
    "moe2-instance/1": "moe2-instance-1.schema.json",
    "solve-output": "solve-output.schema.json",
    "certify-output": "certify-output.schema.json",
}
"""Schema name (the file's ``format`` tag, or the command whose output it describes) -> package file."""

_PREFIX = "urn:slimcaching:schema:"


def schema_names() -> list[str]:
    return list(SCHEMAS)


def _raw(name: str) -> dict[str, Any]:
    if name not in SCHEMAS:
        raise InputError("schema", ("", f"unknown schema {name!r}; valid: {', '.join(SCHEMAS)}"))
    return json.loads(resources.files(__name__).joinpath(SCHEMAS[name]).read_text(encoding="utf-8"))


def _refs(node: Any) -> set[str]:
    """Every ``$ref`` to another shipped schema inside ``node``."""
    if isinstance(node, dict):
        out = {node["$ref"][len(_PREFIX):]} if str(node.get("$ref", "")).startswith(_PREFIX) else set()
        for v in node.values():
            out |= _refs(v)
        return out
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` (see :data:`SCHEMAS`), with the shipped schemas it refers to bundled in.

    Raises
    ------
    InputError
        Unknown name (the valid names are listed).
    """
    doc = _raw(name)
    todo, done = sorted(_refs(doc)), set()
    while todo:
        ref = todo.pop()
        if ref in done:
            continue
        done.add(ref)
        sub = _raw(ref)
        todo.extend(sorted(_refs(sub) - done))
        doc.setdefault("$defs", {})[SCHEMAS[ref].removesuffix(".schema.json")] = sub
    return copy.deepcopy(doc)


def schema_text(name: str) -> str:
    """:func:`load_schema` as indented JSON."""
    return json.dumps(load_schema(name), indent=1, ensure_ascii=False)
