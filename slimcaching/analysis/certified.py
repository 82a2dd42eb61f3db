"""Per-instance certificates from a results store: best bound, best latency, certified ratios.

For every caching instance of a store (rows of
:func:`slimcaching.analysis.report.with_ratios`):

* the **best proven bound** on ``T(opt)`` from any row (exact runs, ``lp-bound``,
  ``decompose``, ``lns``, ``certify``), with the method that produced it and
  when (``certify`` rows name their inner method, e.g. ``certify: Lagrangian
  (decomposition, milp pricing)``);
* the **best latency** of any feasible row, with its method and time;
* the certified gap ``(T_best - T_lb) / T_best``;
* each algorithm's ratio ``R(alg) / R_ref`` (its best row on the instance),
  where ``R_ref`` is ``R(opt)`` when the instance has a proven optimum (the
  column ``reference`` says ``optimum``) and the bound's ``T(empty) - T_lb``
  otherwise (``reference`` = ``bound``: a certified lower bound on the ratio).

:func:`import_certificates` adds the JSON objects written by ``slimcaching
certify`` (or by ``benchmarks/perf_certify.py --records``) to a store, as
``certify`` rows.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..formulations.bounds import check_bound
from .families import certificate_row, get_family, load
from .store import ResultStore, run_key

__all__ = ["certified_table", "import_certificates"]


def _bound_method(row: pd.Series) -> str:
    info = row.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except json.JSONDecodeError:
            info = {}
    if row["name"] == "certify" and isinstance(info, dict) and info.get("bound_method"):
        return f"certify: {info['bound_method']}"
    return str(row["algorithm"])


def _time_of(row: pd.Series, which: str) -> float:
    info = row.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except json.JSONDecodeError:
            info = {}
    if row["name"] == "certify" and isinstance(info, dict) and info.get(f"{which}_time_s") is not None:
        return float(info[f"{which}_time_s"])
    return float(row["runtime_s"]) if pd.notna(row["runtime_s"]) else math.nan


def certified_table(df: pd.DataFrame, algorithms: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per caching instance: T(empty), best bound (method, time), best latency (method, time),
    certified gap, reference kind, and one ratio column per algorithm (``R(alg)/R_ref``).

    Parameters
    ----------
    df : DataFrame
        Rows of :func:`~slimcaching.analysis.report.with_ratios`.
    algorithms : iterable of str, optional
        Algorithm labels for the ratio columns (default: every algorithm with a
        feasible row, in the order they first appear).

    Returns
    -------
    DataFrame
        ``certified_gap`` is ``(best_latency - bound) / best_latency``, set to 0
        when the bound exceeds the latency by at most
        :data:`~slimcaching.formulations.bounds.BOUND_RTOL` (floating point).

    Raises
    ------
    InvalidBound
        A stored bound above the best stored latency by more than ``BOUND_RTOL``
        (relative): that bound is false, and hiding it as gap 0 would report a
        false certificate.
    """
    df = df[df["family"] == "caching"]
    ok = (df["status"] != "error") & (df["feasible"].fillna(0).astype(int) == 1) & df["latency"].notna()
    feas = df[ok]
    algs = list(dict.fromkeys(feas["algorithm"])) if algorithms is None else list(algorithms)
    out = []
    for h, g in df.groupby("instance_hash", sort=False):
        f = g[ok.loc[g.index]]
        if not len(f):
            continue
        t_empty = float(g["empty_latency"].dropna().iloc[0])
        bounded = g[g["bound"].notna()]
        row: dict[str, Any] = {"instance_name": str(g["instance_name"].iloc[0]), "T_empty": t_empty}
        best = f.loc[f["latency"].idxmin()]
        if len(bounded):
            b = bounded.loc[bounded["bound"].idxmax()]
            row.update(bound=float(b["bound"]), bound_method=_bound_method(b), bound_s=_time_of(b, "bound"))
        else:
            row.update(bound=math.nan, bound_method="-", bound_s=math.nan)
        row.update(best_latency=float(best["latency"]), latency_method=str(best["algorithm"]),
                   latency_s=_time_of(best, "latency"))
        if np.isfinite(row["bound"]):
            # a bound above a feasible latency by more than rounding is a false certificate: refuse it
            check_bound(row["bound"], row["bound_method"], row["best_latency"], row["latency_method"])
            # within BOUND_RTOL it is rounding, and the gap is 0
            row["certified_gap"] = max(0.0, (row["best_latency"] - row["bound"]) / row["best_latency"])
        else:
            row["certified_gap"] = math.nan
        proven = bool(g["proven"].any())
        row["reference"] = "optimum" if proven else ("bound" if np.isfinite(row["bound"]) else "-")
        for a in algs:
            r = f.loc[f["algorithm"] == a, "ratio"].dropna()
            row[a] = float(r.max()) if len(r) else math.nan
        out.append(row)
    return pd.DataFrame(out)


def import_certificates(db: str, records: str | Path, *, time_limit: float | None = None) -> int:
    """Add ``certify`` results (a JSON-lines file of ``slimcaching certify`` objects with a ``file`` key,
    or one such object per file) to the store ``db``; returns how many rows were written.

    The instance is re-read from ``file`` so the row's hash and description are the store's own;
    a certificate whose ``instance_hash`` differs from the file's is rejected.

    Raises
    ------
    InputError
        Unreadable record, missing ``file`` or a hash mismatch (file and line named).
    """
    path = Path(records)
    text = path.read_text(encoding="utf-8")
    fam = get_family("caching")
    n = 0
    with ResultStore(db) as st:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                cert = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(str(path), (f"line {i}", f"not valid JSON: {exc.msg}")) from None
            if "file" not in cert:
                raise InputError(str(path), (f"line {i}", "a certificate needs the instance 'file' it was made for"))
            _, inst = load(cert["file"])
            if inst.content_hash() != cert.get("instance_hash"):
                raise InputError(str(path), (f"line {i}", f"instance_hash {cert.get('instance_hash')!r} is not the "
                                                          f"hash {inst.content_hash()!r} of {cert['file']}"))
            params = {} if time_limit is None else {"time_limit": time_limit}
            seed = cert.get("info", {}).get("seed")
            row = {"instance_hash": inst.content_hash(), "algorithm": "certify", "params": params, "seed": seed,
                   "family": fam.name, "instance_path": cert["file"], "versions": cert.get("versions")}
            row.update(fam.describe(inst))
            row.update(certificate_row(cert))
            row["wall_s"] = cert["runtime_s"]
            row["key"] = run_key(inst.content_hash(), "certify", params, seed)
            st.put(row)
            n += 1
    return n
