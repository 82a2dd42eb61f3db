"""The results store: one SQLite row per run, written as each run finishes.

A run is identified by its content, not by the order of arguments
(benchopt-style): the instance content hash, the algorithm name, the
parameters as canonical JSON (sorted keys, no spaces) and the seed.  That key
is the primary key of the ``runs`` table, so re-running a sweep skips what is
already there and a killed sweep resumes with nothing lost or duplicated.

The database uses SQLite's write-ahead log (WAL) so a report can read while a
sweep writes.  Only the parent process of a sweep writes; workers return rows.
Every row is committed on its own, so an interruption never leaves a partial
row behind.

Columns (all rows, both families):

=================  =========================================================
key                ``"hash|algorithm|params|seed"``, the primary key
instance_hash      :meth:`Instance.content_hash`
algorithm, params  name, canonical JSON of the sorted parameters
seed               integer or NULL
family             ``"caching"`` or ``"moe2"``
instance_name/path name and the file it was read from
L, N, U, top_k     sizes (``top_k`` = ``max_l K_l``; MoE² stores categories in
                   ``U`` and experts in ``N``)
cap_frac           mean node capacity over the model size (caching)
size               problem size used for runtime scaling (elements / subsets)
status             :class:`~slimcaching.result.Status` value, or ``"error"``
gain               the maximised quantity: ``R(x)`` (caching) or the MoE²
                   objective; the empirical ratio is ``gain / gain(opt)``
gain_upper         proven upper bound on ``gain(opt)`` when the method has
                   one (caching: ``T(empty) - bound``; MoE²: ``bound``)
latency, reduction, empty_latency, bound, gap   as in ``Result`` (caching)
objective, energy  MoE² values
runtime_s          solve time reported by the method; ``wall_s`` the whole call
feasible           0/1
oracle_calls       MoE² oracle calls (NULL when not counted)
placement          JSON: ``[[n, l, e], ...]`` (caching) or the selection (MoE²)
info, versions     JSON
meta               JSON: the instance's metadata (generator, sweep axis, ...)
message            free text; the traceback tail for ``"error"`` rows
created_at         UTC ISO timestamp
=================  =========================================================
"""
from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

__all__ = ["COLUMNS", "canonical_params", "run_key", "ResultStore"]

#: Column name -> SQLite type, in table order.
COLUMNS: dict[str, str] = {
    "key": "TEXT PRIMARY KEY",
    "instance_hash": "TEXT NOT NULL",
    "algorithm": "TEXT NOT NULL",
    "params": "TEXT NOT NULL",
    "seed": "INTEGER",
    "family": "TEXT NOT NULL",
    "instance_name": "TEXT",
    "instance_path": "TEXT",
    "L": "INTEGER",
    "N": "INTEGER",
    "U": "INTEGER",
    "top_k": "INTEGER",
    "cap_frac": "REAL",
    "size": "INTEGER",
    "status": "TEXT NOT NULL",
    "gain": "REAL",
    "gain_upper": "REAL",
    "latency": "REAL",
    "reduction": "REAL",
    "empty_latency": "REAL",
    "bound": "REAL",
    "gap": "REAL",
    "objective": "REAL",
    "energy": "REAL",
    "runtime_s": "REAL",
    "wall_s": "REAL",
    "feasible": "INTEGER",
    "oracle_calls": "INTEGER",
    "placement": "TEXT",
    "info": "TEXT",
    "versions": "TEXT",
    "meta": "TEXT",
    "message": "TEXT",
    "created_at": "TEXT",
}

_JSON_COLUMNS = ("placement", "info", "versions", "meta")


def _jsonable(obj: Any) -> Any:
    from ..result import _jsonable as conv

    return conv(obj)


def canonical_params(params: Mapping[str, Any] | None) -> str:
    """Parameters as canonical JSON: sorted keys, no whitespace, ``{}`` when empty."""
    return json.dumps(_jsonable(dict(params or {})), sort_keys=True, separators=(",", ":"))


def run_key(instance_hash: str, algorithm: str, params: Mapping[str, Any] | str | None,
            seed: int | None) -> str:
    """The primary key of a run: ``hash|algorithm|canonical params|seed``."""
    p = params if isinstance(params, str) else canonical_params(params)
    return f"{instance_hash}|{algorithm}|{p}|{'null' if seed is None else int(seed)}"


class ResultStore:
    """A SQLite results database (WAL mode), one row per run.

    Parameters
    ----------
    path : str or PathLike
        The database file; created with its table when missing.  ``":memory:"``
        works for throw-away stores.

    Examples
    --------
    >>> store = ResultStore(":memory:")
    >>> store.count()
    0
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=60.0)
        self._con.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
        with self._con:
            self._con.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
            self._con.execute("CREATE INDEX IF NOT EXISTS runs_instance ON runs(instance_hash)")

    # ---------------------------------------------------------------- writing
    def put(self, row: Mapping[str, Any]) -> None:
        """Insert (or replace) one row and commit it.

        ``key`` is computed from the row when absent; JSON columns may be given
        as Python objects; non-finite floats are stored as NULL.
        """
        rec = {c: row.get(c) for c in COLUMNS}
        if rec["key"] is None:
            rec["key"] = run_key(rec["instance_hash"], rec["algorithm"], rec["params"], rec["seed"])
        if not isinstance(rec["params"], str):
            rec["params"] = canonical_params(rec["params"])
        for c in _JSON_COLUMNS:
            if rec[c] is not None and not isinstance(rec[c], str):
                rec[c] = json.dumps(_jsonable(rec[c]), sort_keys=True, separators=(",", ":"))
        for c, v in rec.items():
            if isinstance(v, float) and not math.isfinite(v):
                rec[c] = None
            elif isinstance(v, bool):
                rec[c] = int(v)
        if rec["created_at"] is None:
            rec["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        names = ", ".join(f'"{c}"' for c in COLUMNS)
        marks = ", ".join("?" for _ in COLUMNS)
        with self._con:
            self._con.execute(f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})",
                              [rec[c] for c in COLUMNS])

    # ---------------------------------------------------------------- reading
    def keys(self, *, include_errors: bool = False) -> set[str]:
        """Keys of the stored runs (``"error"`` and ``"timeout"`` rows, retried by the next sweep, only
        with ``include_errors``)."""
        q = "SELECT key FROM runs" + ("" if include_errors else " WHERE status NOT IN ('error', 'timeout')")
        return {r[0] for r in self._con.execute(q)}

    def count(self) -> int:
        return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def rows(self, where: str = "", args: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts, JSON columns decoded; ``where`` is an SQL condition."""
        q = "SELECT * FROM runs" + (f" WHERE {where}" if where else "") + " ORDER BY key"
        for r in self._con.execute(q, tuple(args)):
            d = dict(r)
            for c in _JSON_COLUMNS:
                if d.get(c) is not None:
                    d[c] = json.loads(d[c])
            d["params_dict"] = json.loads(d["params"])
            yield d

    def frame(self):
        """All rows as a :class:`pandas.DataFrame` (JSON columns decoded)."""
        import pandas as pd

        rows = list(self.rows())
        return pd.DataFrame(rows, columns=[*COLUMNS, "params_dict"])

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
