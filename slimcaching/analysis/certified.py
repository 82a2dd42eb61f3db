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
``certify`` rows, after checking each one: the instance hash, the placement's
feasibility and latency (re-evaluated by :mod:`slimcaching.objective`), and
every bound against every feasible latency of the records and of the store.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..errors import InputError
from ..formulations.bounds import InvalidBound, check_bound
from .families import certificate_row, get_family, load
from .store import ResultStore, run_key

__all__ = ["certified_table", "import_certificates", "LATENCY_RTOL", "CERTIFIED_FORMATS"]

#: A certificate's ``latency`` may differ from the evaluator's latency of its placement by this
#: relative amount (summation order); more is a record that does not describe its placement.
LATENCY_RTOL = 1e-9

#: Markdown formats of the certified table's columns (``format_table`` reads them from ``DataFrame.attrs``):
#: latencies and bounds to six decimals, so a gap of 0.01 % stays visible; the gap in per cent.
CERTIFIED_FORMATS = {"T_empty": ".6g", "bound": ".6f", "best_latency": ".6f", "certified_gap": ".3%"}


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
        Columns ``instance_name``, ``size`` (``L x E, top-k, N=.., U=..``;
        ``E`` the experts per layer, or the total when layers differ),
        ``T_empty``, ``bound``, ``bound_method``, ``bound_s`` (when the bound
        was found, wall seconds into its run), ``best_latency``,
        ``latency_method``, ``latency_s``, ``certified_gap``, ``reference``
        (``optimum``: the ratios are exact; ``bound``: each is a certified
        lower bound on the true ratio), one ratio column per algorithm, and
        ``not_finished``: the algorithms with a run on the instance but no
        feasible result (``best (timeout)``), which is why their ratio is
        missing.  ``certified_gap`` is ``(best_latency - bound) / best_latency``, set to 0
        when the bound exceeds the latency by at most
        :data:`~slimcaching.formulations.bounds.BOUND_RTOL` (floating point).
        ``attrs["formats"]`` holds the markdown formats and
        ``attrs["ratio_columns"]`` the algorithm columns (for ``format_table``).

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
        row: dict[str, Any] = {"instance_name": str(g["instance_name"].iloc[0]), "size": _size(g.iloc[0]),
                               "T_empty": t_empty}
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
        unfinished = []
        for a in algs:
            r = f.loc[f["algorithm"] == a, "ratio"].dropna()
            row[a] = float(r.max()) if len(r) else math.nan
            tried = g[g["algorithm"] == a]
            if len(tried) and not (f["algorithm"] == a).any():
                unfinished.append(f"{a} ({', '.join(sorted(set(map(str, tried['status']))))})")
        row["not_finished"] = ", ".join(unfinished)
        out.append(row)
    table = pd.DataFrame(out)
    table.attrs["formats"] = {**CERTIFIED_FORMATS, **{a: ".4f" for a in algs}}
    table.attrs["ratio_columns"] = list(algs)
    return table


def _size(r: pd.Series) -> str:
    """``L x E, top-k, N=.., U=..`` from a store row (``size = N * total experts``)."""
    try:
        L, N, U, k, size = (int(r[c]) for c in ("L", "N", "U", "top_k", "size"))
    except (TypeError, ValueError, KeyError):
        return "-"
    experts = size // N if N else 0
    layers = f"{L} x {experts // L}" if L and experts % L == 0 else f"{L} layers, {experts} experts"
    return f"{layers}, top-{k}, N={N}, U={U}"


def import_certificates(db: str, records: str | Path, *, time_limit: float | None = None) -> int:
    """Add ``certify`` results (a JSON-lines file of ``slimcaching certify`` objects with a ``file`` key,
    or one such object per file) to the store ``db``; returns how many rows were written.

    The instance is re-read from ``file`` so the row's hash and description are the store's own.
    A record replaces a stored ``certify`` row of the same instance, seed and ``time_limit``.
    Every record is checked before anything is written (a bad file adds nothing):

    * its ``instance_hash`` is the file's;
    * its placement fits every node's capacity and its latency, re-evaluated by
      :func:`slimcaching.objective.evaluate`, is the record's ``latency`` (relative
      :data:`LATENCY_RTOL`), and so is its ``empty_latency``;
    * its bound is not above any feasible latency of the instance, neither its own,
      nor another record's, nor any row already in the store; and no bound of the
      store or the other records is above its latency
      (:func:`~slimcaching.formulations.bounds.check_bound`).

    Raises
    ------
    InputError
        Unreadable record, missing ``file``, a hash mismatch, a placement that is
        infeasible or not of the stated latency, or a bound above a feasible latency
        (file, line and the two methods named).
    """
    from ..instances.validate import PLACEMENT_FORMAT, placement_from_dict
    from ..objective import evaluate

    path = Path(records)
    text = path.read_text(encoding="utf-8")
    fam = get_family("caching")
    checked: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    # per instance hash: (value, method, where) of every bound and feasible latency seen
    bounds: dict[str, list[tuple[float, str, str]]] = {}
    latencies: dict[str, list[tuple[float, str, str]]] = {}
    instances: dict[str, Any] = {}
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {i}"
        try:
            cert = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(str(path), (where, f"not valid JSON: {exc.msg}")) from None
        if not isinstance(cert, dict) or "file" not in cert:
            raise InputError(str(path), (where, "a certificate needs the instance 'file' it was made for"))
        missing = [k for k in ("latency", "bound", "empty_latency", "placement", "bound_method", "latency_method",
                               "runtime_s", "bounds", "incumbents", "gap", "status") if k not in cert]
        if missing:
            raise InputError(str(path), (where, f"a certificate needs {', '.join(map(repr, missing))}"))
        if cert["file"] not in instances:
            instances[cert["file"]] = load(cert["file"])[1]
        inst = instances[cert["file"]]
        h = inst.content_hash()
        if h != cert.get("instance_hash"):
            raise InputError(str(path), (where, f"instance_hash {cert.get('instance_hash')!r} is not the "
                                                f"hash {h!r} of {cert['file']}"))
        placement, _ = placement_from_dict({"format": PLACEMENT_FORMAT, "cache": cert["placement"]}, inst,
                                           file=f"{path} {where}")
        ev = evaluate(inst, placement)
        if not ev.feasible:
            raise InputError(str(path), (f"{where}: placement",
                                         f"over the capacity of {', '.join(ev.over_capacity)}: not a feasible "
                                         "placement, so its latency proves nothing"))
        for key, value in (("latency", ev.latency), ("empty_latency", ev.empty_latency)):
            if not abs(float(cert[key]) - value) <= LATENCY_RTOL * max(abs(value), 1e-300):
                raise InputError(str(path), (f"{where}: {key}", f"{cert[key]!r} is not the evaluator's "
                                                                f"{value!r} for the record's placement"))
        method = f"certify ({path.name} {where})"
        bounds.setdefault(h, []).append((float(cert["bound"]), f"{method}: {cert['bound_method']}", where))
        latencies.setdefault(h, []).append((float(cert["latency"]), f"{method}: {cert['latency_method']}", where))
        checked.append((i, cert, fam.describe(inst)))
    with ResultStore(db) as st:
        for h in bounds:
            stored = [r for r in st.rows("instance_hash = ?", (h,)) if r["status"] != "error"]
            b_all = bounds[h] + [(float(r["bound"]), f"{r['algorithm']} (store)", "")
                                 for r in stored if r["bound"] is not None]
            l_all = latencies[h] + [(float(r["latency"]), f"{r['algorithm']} (store)", "")
                                    for r in stored if r["latency"] is not None and r["feasible"]]
            bv, bm, bw = max(b_all)
            lv, lm, lw = min(l_all)
            try:
                check_bound(bv, bm, lv, lm)
            except InvalidBound as exc:
                raise InputError(str(path), (f"{bw or lw}: bound", str(exc))) from None
        n = 0
        for i, cert, describe in checked:
            inst = instances[cert["file"]]
            params = {} if time_limit is None else {"time_limit": time_limit}
            seed = cert.get("info", {}).get("seed")
            row = {"instance_hash": inst.content_hash(), "algorithm": "certify", "params": params, "seed": seed,
                   "family": fam.name, "instance_path": cert["file"], "versions": cert.get("versions")}
            row.update(describe)
            row.update(certificate_row(cert))
            row["wall_s"] = cert["runtime_s"]
            row["key"] = run_key(inst.content_hash(), "certify", params, seed)
            st.put(row)
            n += 1
    return n
