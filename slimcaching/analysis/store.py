"""The results store: one SQLite row per run, written as each run finishes.

A run is identified by its content, not by the order of arguments
(benchopt-style): the instance content hash, the algorithm name, the
parameters as canonical JSON (sorted keys, no spaces) and the seed.  That key
is the primary key of the ``runs`` table, so re-running a sweep skips what is
already there and a killed sweep resumes with nothing lost or duplicated.

While a sweep writes, the database uses SQLite's write-ahead log (WAL) so a
report can read while a sweep writes; readers open it read-only (``mode=ro``)
and never change it.  Only the parent process of a sweep writes; workers
return rows.
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
status             :class:`~slimcaching.result.Status` value, ``"error"`` (retried
                   by the next sweep) or ``"timeout"`` (ended at the hard timeout)
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
info, versions     JSON (``info.cpu_s``: the run's CPU seconds)
meta               JSON: the instance's metadata (generator, sweep axis, ...)
message            free text; the traceback tail for ``"error"`` rows
created_at         UTC ISO timestamp
=================  =========================================================
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import InputError

__all__ = ["COLUMNS", "canonical_params", "run_key", "ResultStore", "StoreError"]

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


def _sqlite_reason(exc: sqlite3.Error) -> str:
    msg = str(exc)
    return {"file is not a database": "not a SQLite file (corrupt, or another kind of file)"}.get(msg, msg)


@contextlib.contextmanager
def _translate_write_errors(path: str, doing: str) -> Iterator[None]:
    """SQLite errors while writing -> :class:`StoreError` (OS trouble) or :class:`InputError` (not a store)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or str(exc) == "file is not a database":
            raise InputError(path, ("", f"not a readable results database: {_sqlite_reason(exc)}")) from None
        raise StoreError(f"{path}: cannot {doing} in the results store: {exc}") from None


class StoreError(OSError):
    """The results store could not be written (disk full, read-only file, I/O error).

    An ``OSError``: the command line reports it as one line with exit code 1.
    Every row committed before the failure stays in the store.
    """


def _is_cantopen(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_CANTOPEN" or "unable to open" in str(exc)


class ResultStore:
    """A SQLite results database, one row per run.

    Parameters
    ----------
    path : str or PathLike
        The database file; created with its table when missing.  ``":memory:"``
        works for throw-away stores.
    readonly : bool
        Open an existing store for reading only (SQLite's ``mode=ro`` URI):
        nothing is created, converted or written, so a report can read a store
        on a read-only file system or one that a sweep is writing.

    Raises
    ------
    InputError
        ``readonly`` and the file is missing; or the file is not a SQLite
        database, or a SQLite database without the ``runs`` table of a results
        store (a writer never adds its table to a foreign database).
    StoreError
        A writer cannot open or initialise the file (read-only, disk full).

    Notes
    -----
    A writer keeps the database in write-ahead-log mode while it is open, so
    readers see each committed row while a sweep runs; on close it switches
    back to a rollback journal when no other connection is open, which leaves
    a single file that a read-only reader opens without creating ``-wal`` /
    ``-shm`` files next to it.  A WAL file left by a killed sweep on a
    read-only file system is read as of its last checkpoint (``immutable=1``).

    Examples
    --------
    >>> store = ResultStore(":memory:")
    >>> store.count()
    0
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False):
        self.path = str(path)
        self.readonly = readonly
        memory = self.path == ":memory:"
        if readonly and not memory:
            self._con = self._open_readonly()
        else:
            if not memory:
                try:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"{self.path}: cannot create the results store's folder: "
                                     f"{exc.strerror or exc}") from None
                if Path(self.path).is_dir():
                    raise InputError(self.path, ("", "is a folder, not a results database"))
            try:
                self._con = sqlite3.connect(self.path, timeout=60.0)
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: cannot open the results store: {exc}") from None
        self._con.row_factory = sqlite3.Row
        try:
            self._check_schema(create=not readonly)
            if not readonly and not memory:
                with self._write("initialise"):
                    self._con.execute("PRAGMA journal_mode=WAL")
                    self._con.execute("PRAGMA synchronous=NORMAL")
            if not readonly:
                cols = ", ".join(f'"{c}" {t}' for c, t in COLUMNS.items())
                with self._write("initialise"), self._con:
                    self._con.execute(f"CREATE TABLE IF NOT EXISTS runs ({cols})")
                    self._con.execute("CREATE INDEX IF NOT EXISTS runs_instance ON runs(instance_hash)")
        except BaseException:
            self._con.close()
            raise

    def _open_readonly(self) -> sqlite3.Connection:
        p = Path(self.path)
        if not p.exists():
            raise InputError(self.path, ("", "no such results database"))
        if p.is_dir():
            raise InputError(self.path, ("", "is a folder, not a results database"))
        uri = "file:" + urllib.parse.quote(str(p.resolve())) + "?mode=ro"
        try:
            return sqlite3.connect(uri, uri=True, timeout=60.0)
        except sqlite3.Error as exc:
            if not _is_cantopen(exc) or not os.access(p, os.R_OK):
                raise InputError(self.path, ("", f"cannot read the results database: {exc}")) from None
        # a WAL database whose -shm file cannot be created (read-only folder or file system)
        try:
            return sqlite3.connect(uri + "&immutable=1", uri=True)
        except sqlite3.Error as exc:
            raise InputError(self.path, ("", f"cannot read the results database: {exc}")) from None

    def _check_schema(self, *, create: bool) -> None:
        """Refuse files that are not results stores (corrupt, another kind of file, a foreign database).

        Reads only.  A writer (``create``) runs this before its first write, and
        also checks the file's structure and indexes (``PRAGMA integrity_check``,
        60 CPU-ms on a 20 MB store of 20k rows): switching a damaged file to WAL,
        or adding a table to a foreign one, would change a file that is not ours.
        A reader finds damage when it reads the rows.
        """
        try:
            objects = [(r[0], r[1]) for r in self._con.execute("SELECT type, name FROM sqlite_master")]
            tables = {n for t, n in objects if t == "table"}
            cols = [r[1] for r in self._con.execute("PRAGMA table_info(runs)")] if "runs" in tables else []
            problems = ([r[0] for r in self._con.execute("PRAGMA integrity_check(1)")] if create and objects
                        else ["ok"])
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, ("", f"not a readable results database: {_sqlite_reason(exc)}")) from None
        except UnicodeDecodeError:  # a damaged byte inside the schema's text: SQLite reads it, Python cannot decode it
            raise InputError(self.path, ("", "not a readable results database: damaged file (schema text is not "
                                             "UTF-8)")) from None
        if problems != ["ok"]:
            raise InputError(self.path, ("", "not a readable results database: damaged file (SQLite integrity check: "
                                             f"{' '.join(problems[0].replace('*** in database main ***', '').split())})"))
        if "runs" in tables:
            missing = [c for c in COLUMNS if c not in cols]
            if missing:
                raise InputError(self.path, ("", f"not a slimcaching results database: table 'runs' lacks "
                                                 f"column(s) {', '.join(missing[:5])}"))
        elif not create or objects:
            what = (f"it holds other tables ({', '.join(sorted(tables)[:5])})" if tables
                    else f"it holds other objects ({', '.join(f'{t} {n}' for t, n in sorted(objects)[:5])})"
                    if objects else "it has no 'runs' table")
            raise InputError(self.path, ("", f"not a slimcaching results database: {what}"))

    def _write(self, doing: str):
        return _translate_write_errors(self.path, doing)

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
        if self.readonly:
            raise StoreError(f"{self.path}: the results store was opened read-only")
        with self._write("store a run"), self._con:
            self._con.execute(f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})",
                              [rec[c] for c in COLUMNS])

    # ---------------------------------------------------------------- reading
    def keys(self, *, include_errors: bool = False) -> set[str]:
        """Keys of the stored runs (``"error"`` rows only with ``include_errors``)."""
        q = "SELECT key FROM runs" + ("" if include_errors else " WHERE status != 'error'")
        with self._read():
            return {r[0] for r in self._con.execute(q)}

    def count(self) -> int:
        with self._read():
            return int(self._con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def rows(self, where: str = "", args: Iterable[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows as dicts, JSON columns decoded; ``where`` is an SQL condition."""
        q = "SELECT * FROM runs" + (f" WHERE {where}" if where else "") + " ORDER BY key"
        with self._read():
            for r in self._con.execute(q, tuple(args)):
                d = dict(r)
                for c in _JSON_COLUMNS:
                    if d.get(c) is not None:
                        d[c] = json.loads(d[c])
                d["params_dict"] = json.loads(d["params"])
                yield d

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, ("", f"cannot read the results database: {_sqlite_reason(exc)}")) from None
        except (json.JSONDecodeError, TypeError) as exc:
            raise InputError(self.path, ("", f"not a slimcaching results database: a row holds invalid JSON "
                                             f"({exc})")) from None

    def frame(self):
        """All rows as a :class:`pandas.DataFrame` (JSON columns decoded)."""
        import pandas as pd

        rows = list(self.rows())
        return pd.DataFrame(rows, columns=[*COLUMNS, "params_dict"])

    def close(self) -> None:
        """Close the connection; a writer that is the last one open leaves a single file (no WAL)."""
        try:
            if not self.readonly and self.path != ":memory:":
                try:  # best effort: another sweep writing keeps the WAL, and nothing waits for it
                    self._con.execute("PRAGMA busy_timeout = 0")
                    self._con.execute("PRAGMA journal_mode = DELETE")
                except sqlite3.Error:
                    pass
        finally:
            self._con.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
