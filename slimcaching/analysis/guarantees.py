"""Check claimed approximation guarantees against stored runs.

Each algorithm may carry ``guarantees``: :class:`~slimcaching.result.Guarantee`
objects ``R(alg) >= ratio * R(opt)`` with a regime predicate
``applies(instance, params)``.  For every stored caching run whose instance
and parameters fall in a claimed regime, the empirical ratio of
:func:`~slimcaching.analysis.report.with_ratios` is compared with the claim:

* reference proven optimal: ``ratio < claim - tol`` is a **violation**; the
  instance, the algorithm's placement and the optimal placement are written as
  a counterexample file, with both latencies recomputed by the evaluator;
* reference only bounded: the stored ratio is a lower bound on the true one,
  so ``ratio >= claim`` certifies the run and ``ratio < claim`` is
  **inconclusive** (counted, not written).

Proven and conjectured claims are kept apart (``Guarantee.status``).  Only a
proven claim is ever *verified*: ``verified`` counts the runs at or above it
(against a proven optimum or a bound).  A conjectured claim is run the same
way, but its runs are only *consistent* with it (``verified`` stays 0); a run
below it against a proven optimum *refutes* it (``refuted``, with a
counterexample file).  A run cut short by its time limit is outside every
regime (a guarantee speaks of completed runs) and is only counted in the notes.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .report import load_frame, with_ratios

__all__ = ["COUNTEREXAMPLE_FORMAT", "check_guarantees", "write_counterexample"]

COUNTEREXAMPLE_FORMAT = "slimcaching-counterexample/1"
TOL = 1e-9


def _instance(path: str, expected_hash: str, cache: dict[str, Any]):
    from ..instances.io import read_instance

    if path not in cache:
        try:
            inst = read_instance(path)
        except InputError:
            inst = None
        cache[path] = inst if inst is not None and inst.content_hash() == expected_hash else None
    return cache[path]


def write_counterexample(path: str | Path, instance, *, algorithm: str, params: dict, seed: int | None,
                         guarantee, placement_alg, placement_opt, observed_ratio: float,
                         reference: str) -> dict[str, Any]:
    """Write a counterexample file and return its content.

    The latencies, reductions and the ratio are recomputed here by the
    evaluator from the two placements, so the file certifies itself.
    """
    from ..instances.io import placement_to_dict, write_json
    from ..objective import evaluate

    ea, eo = evaluate(instance, placement_alg), evaluate(instance, placement_opt)
    ratio = ea.reduction / eo.reduction if eo.reduction > 0 else 1.0
    doc = {
        "format": COUNTEREXAMPLE_FORMAT,
        "algorithm": algorithm, "params": params, "seed": seed,
        "guarantee": {"ratio": guarantee.ratio, "regime": guarantee.regime, "reference": guarantee.reference,
                      "text": guarantee.text()},
        "observed_ratio": observed_ratio, "recomputed_ratio": ratio,
        "latency_ratio": ea.latency / eo.latency if eo.latency > 0 else None,
        "reference_algorithm": reference,
        "instance": instance.to_dict(),
        "algorithm_placement": placement_to_dict(instance, placement_alg, algorithm=algorithm,
                                                 latency=ea.latency, reduction=ea.reduction,
                                                 empty_latency=ea.empty_latency, feasible=ea.feasible),
        "optimal_placement": placement_to_dict(instance, placement_opt, algorithm=reference,
                                               latency=eo.latency, reduction=eo.reduction,
                                               empty_latency=eo.empty_latency, status="optimal",
                                               feasible=eo.feasible),
    }
    write_json(doc, path)
    return doc


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", s)[:80]


def check_guarantees(db: str, *, out_dir: str | Path | None = "counterexamples",
                     df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[Path], list[str]]:
    """Compare every claimed guarantee with the stored runs.

    Parameters
    ----------
    db : str
        The results database.
    out_dir : path or None
        Where counterexample files go (``None``: do not write them).

    Returns
    -------
    table : DataFrame
        One row per (algorithm with parameters, regime): ``claim``
        (``proven`` or ``conjectured``), ``claimed`` ratio, ``checked`` runs in
        the regime, of which ``proven`` against an optimum, ``verified`` (at
        or above a proven claim; always 0 for a conjecture), ``min_ratio``,
        ``margin`` = ``min_ratio - claimed``, ``violations`` (of a proven
        claim), ``refuted`` (a conjecture, against a proven optimum),
        ``inconclusive``, ``reference``.
    files : list of Path
        Counterexample files written.
    notes : list of str
        Runs that could not be checked and why.
    """
    from ..algorithms import REGISTRY, guarantees_of
    from ..instances.model import Placement

    if df is None:
        df = load_frame(db)
    df = with_ratios(df)
    df = df[df["family"] == "caching"]
    notes: list[str] = []
    files: list[Path] = []
    cache: dict[str, Any] = {}
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    missing_inst = cut_short = 0
    for name in sorted(set(df["name"])):
        if name not in REGISTRY:
            continue
        try:
            gs = guarantees_of(name)
        except (ImportError, AttributeError) as exc:
            notes.append(f"{name}: cannot import ({exc}); its guarantees were not checked")
            continue
        if not gs:
            continue
        rows = df[(df["name"] == name) & (df["status"] != "error")]
        for lab in sorted(set(rows["algorithm"])) or [name]:
            for g in gs:
                stats.setdefault((lab, g.regime), {"algorithm": lab, "regime": g.regime, "claim": g.status,
                                                   "claimed": g.ratio, "checked": 0, "proven": 0, "verified": 0,
                                                   "ratios": [], "violations": 0, "refuted": 0,
                                                   "inconclusive": 0, "reference": g.reference})
        for _, r in rows.iterrows():
            if not np.isfinite(r["ratio"]):
                continue
            if r["status"] == "time_limit":
                cut_short += 1
                continue
            inst = _instance(r["instance_path"], r["instance_hash"], cache)
            if inst is None:
                missing_inst += 1
                continue
            for g in gs:
                try:
                    applies = bool(g.applies(inst, dict(r["params_dict"])))
                except Exception as exc:  # a broken predicate must not hide the others
                    notes.append(f"{name}: regime predicate {g.regime!r} failed: {exc}")
                    applies = False
                if not applies:
                    continue
                s = stats[(r["algorithm"], g.regime)]
                s["checked"] += 1
                s["proven"] += bool(r["proven"])
                s["ratios"].append(float(r["ratio"]))
                if r["ratio"] >= g.ratio - TOL:
                    s["verified"] += bool(g.proven)
                    continue
                if not r["proven"]:
                    s["inconclusive"] += 1
                    continue
                s["violations" if g.proven else "refuted"] += 1
                if out_dir is None:
                    continue
                same = df[(df["instance_hash"] == r["instance_hash"]) & df["proven"]
                          & df["name"].isin(("exact", "brute-force")) & (df["status"] == "optimal")]
                best = same.loc[same["gain"].idxmax()]
                p_alg = Placement.from_elements(inst, r["placement"] or [])
                p_opt = Placement.from_elements(inst, best["placement"] or [])
                path = Path(out_dir) / (f"{_safe(r['algorithm'])}-{r['instance_hash']}-seed{r['seed']}"
                                        f"-{_safe(str(g.ratio))}.json")
                write_counterexample(path, inst, algorithm=r["algorithm"], params=dict(r["params_dict"]),
                                     seed=None if pd.isna(r["seed"]) else int(r["seed"]), guarantee=g,
                                     placement_alg=p_alg, placement_opt=p_opt, observed_ratio=float(r["ratio"]),
                                     reference=str(best["algorithm"]))
                files.append(path)
    if cut_short:
        notes.append(f"{cut_short} run(s) stopped by their time limit: outside every regime, not checked")
    if missing_inst:
        notes.append(f"{missing_inst} run(s) skipped: instance file missing or changed since the run")
    out = []
    for s in stats.values():
        rs = s.pop("ratios")
        s["min_ratio"] = min(rs) if rs else math.nan
        s["margin"] = s["min_ratio"] - s["claimed"] if rs else math.nan
        out.append(s)
    cols = ["algorithm", "regime", "claim", "claimed", "checked", "proven", "verified", "min_ratio", "margin",
            "violations", "refuted", "inconclusive", "reference"]
    table = pd.DataFrame(out, columns=cols).sort_values(["algorithm", "regime"]).reset_index(drop=True)
    return table, files, notes
