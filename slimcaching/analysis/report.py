"""Tables from a results store: empirical ratios, proofs and formulation comparisons.

The *reference* of an instance is taken from the rows of the store:

* when one of its exact-reference rows (the family's ``exact_names``, any
  parameters or seed) is proven ``optimal``: ``gain(opt)`` is its gain (the
  largest among optimal rows) and the instance's ratios are **exact**;
* when some row's proven bound is met by a feasible row (relative latency gap
  at most :data:`PROVEN_GAP`, e.g. a ``certify`` or ``decompose`` run that
  closed its gap), that feasible row is a proven optimum too and the ratios
  are **exact**;
* otherwise the smallest stored upper bound ``gain_upper`` over *all* rows of
  the instance (exact runs stopped by a work or time limit, LP bounds,
  ``decompose``, ``lns``, ``certify``) is used, and the ratio
  ``gain(alg) / gain_upper`` is a **certified lower bound** on the true ratio.

For caching, ``gain = R(x) = T(empty) - T(x)`` and ``gain_upper = T(empty) -
T_lb``; the latency ratio ``T(alg) / T(opt)`` is exact on proven rows and
``T(alg) / T_lb`` (an upper bound on it) otherwise.  When ``gain(opt) = 0``
(nothing can be gained, e.g. no capacity) every feasible placement is optimal
and the ratio is defined as 1.  Infeasible and failed runs get no ratio and
are counted separately.

The ratio table keeps the two kinds apart and never averages them together:
per group, the ``proven`` instances with the mean / minimum / 5th-percentile
exact ratio (numpy's linear interpolation) and the mean latency ratio, then
the ``certified`` instances (bound only) with the mean and minimum certified
lower bound and the mean latency-ratio upper bound; then the median runtime
and the failed runs.  :func:`proof_table` says, per instance, where its
reference came from and whether any run of it was stopped by a wall clock
(the only load-dependent outcome).

Tables render as markdown, CSV (full precision) or LaTeX through
:meth:`pandas.io.formats.style.Styler.to_latex`: booktabs rules, a
``\\label``, siunitx ``S`` columns (decimal-aligned), header groups with
``\\cmidrule``, row groups separated by ``\\midrule``, captions with math,
and ``table*`` when the estimated width exceeds one IEEE column (252 pt).
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .escape import escape_latex, escape_markdown
from .columns import COLUMN_SETS, GROUP_COLUMNS, RATIO_COLUMNS, TABLES
from .families import FAMILIES
from .store import ResultStore

__all__ = ["GROUP_COLUMNS", "RATIO_COLUMNS", "COLUMN_SETS", "ALGORITHM_ORDER", "algorithm_rank", "BOUND_ONLY", "WALL_STOPS",
           "algorithm_label", "load_frame", "with_ratios", "ratio_table", "proof_table", "formulation_table", "select_columns",
           "ratio_caption", "TABLES", "FORMULATION_CAPTION", "PROOF_CAPTION", "CERTIFIED_CAPTION", "PROOF_LATEX_COLUMNS", "format_table", "report"]

#: The order of the known algorithms in tables and figure legends: ours, the paper's, the baselines, then the
#: exact references; other algorithms (MoE² methods, new ones) follow in name order, variants beside their name.
ALGORITHM_ORDER = ("best", "polish", "cyclic", "successive", "maxconv", "greedy", "independent", "popularity",
                   "random", "cloud", "exact", "brute-force")


def algorithm_rank(label: str) -> tuple[int, str]:
    """Sort key of an algorithm label (``name`` or ``name[k=v,...]``) in :data:`ALGORITHM_ORDER`."""
    base = str(label).split("[")[0]
    return (ALGORITHM_ORDER.index(base) if base in ALGORITHM_ORDER else len(ALGORITHM_ORDER), str(label))


#: Pseudo-algorithms that produce bounds, not placements (kept out of ratio tables).
BOUND_ONLY = ("lp-bound",)

#: Row statuses that mean a wall clock stopped the run: its outcome depends on machine speed.
WALL_STOPS = ("time_limit", "timeout")

_ZERO = 1e-12

#: Relative tolerance of the consistency check between bounds and achieved gains (the exact solver's
#: optimality tolerance, :data:`slimcaching.formulations.solve.OPTIMAL_GAP`).
CONSISTENCY_RTOL = 1e-6

#: A bound within this relative latency gap of a feasible latency proves that latency optimal.
PROVEN_GAP = 1e-6


def algorithm_label(name: str, params: Any) -> str:
    """``name[k=v,...]`` (parameters sorted), or ``name`` without parameters: how tables name a run."""
    p = json.loads(params) if isinstance(params, str) else dict(params or {})
    if not p:
        return name
    return f"{name}[{','.join(f'{k}={json.dumps(v) if not isinstance(v, str) else v}' for k, v in sorted(p.items()))}]"


def load_frame(db: str | Any) -> pd.DataFrame:
    """All rows of a store (path or :class:`ResultStore`) with derived columns
    ``name`` (the algorithm), ``algorithm`` (name with parameters) and ``suite``.

    A path is opened read-only and never changed; a missing, corrupt or foreign
    database is an :class:`InputError`."""
    if isinstance(db, ResultStore):
        df = db.frame()
    else:
        try:
            with ResultStore(db, readonly=True) as st:  # checks the file, and never changes it
                df = st.frame()
        except InputError:
            raise
        except (sqlite3.DatabaseError, UnicodeDecodeError, ValueError) as exc:  # corrupt, truncated, not SQLite
            raise InputError(str(db), ("", f"not a readable results database: {str(exc).splitlines()[0]}")) from None
    df = df.copy()
    df["name"] = df["algorithm"]
    df["algorithm"] = [algorithm_label(a, p) for a, p in zip(df["name"], df["params"])]
    df["suite"] = [Path(p).parent.name if isinstance(p, str) else "" for p in df["instance_path"]]
    for c in ("gain", "gain_upper", "latency", "bound", "empty_latency", "runtime_s", "cap_frac"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def with_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Add the reference and ratio columns to every row.

    Added columns: ``gain_ref`` (``gain(opt)`` or the best upper bound),
    ``proven`` (the reference is a proven optimum), ``ref_source`` (the
    algorithm label of the row the reference comes from), ``ratio`` (empirical
    ratio, exact when ``proven`` else a certified lower bound), ``certified``
    (the row has a ratio against a bound only), ``latency_ratio`` (caching
    only), ``best_gain`` (largest gain of any feasible row of the instance).
    """
    df = df.copy()
    ok = (df["status"] != "error") & (df["feasible"].fillna(0).astype(int) == 1) & df["gain"].notna()
    refs: dict[str, tuple[float, bool, float | None, str]] = {}
    for h, g in df.groupby("instance_hash"):
        fam = FAMILIES.get(str(g["family"].iloc[0]))
        exact_names = fam.exact_names if fam is not None else ()
        opt = g[g["name"].isin(exact_names) & (g["status"] == "optimal") & g["gain"].notna()]
        if len(opt):  # the largest optimal gain; among ties the shortest label (the default parameters)
            top = opt.assign(_n=opt["algorithm"].str.len()).sort_values(["gain", "_n"], ascending=[False, True]).iloc[0]
            tref = float(opt["latency"].min()) if opt["latency"].notna().any() else None
            refs[h] = (float(top["gain"]), True, tref, str(top["algorithm"]))
        elif g["gain_upper"].notna().any():
            top = g.loc[g["gain_upper"].idxmin()]
            gref = float(top["gain_upper"])
            tlb = None
            if g["empty_latency"].notna().any():
                tlb = float(g["empty_latency"].dropna().iloc[0]) - gref
            feas = g[ok.loc[g.index]]
            if tlb is not None and len(feas):
                best = feas.loc[feas["gain"].idxmax()]
                best_gain = float(best["gain"])
                t_best = tlb + gref - best_gain
                if t_best > 0 and gref - best_gain <= PROVEN_GAP * t_best:  # the bound is met: a proven optimum
                    refs[h] = (best_gain, True, t_best, f"{best['algorithm']} (bound of {top['algorithm']})")
                    continue
            refs[h] = (gref, False, tlb, str(top["algorithm"]))
    gain_ref = np.full(len(df), np.nan)
    proven = np.zeros(len(df), dtype=bool)
    t_ref = np.full(len(df), np.nan)
    source = np.full(len(df), None, dtype=object)
    for i, h in enumerate(df["instance_hash"]):
        if h in refs:
            gain_ref[i], proven[i], source[i] = refs[h][0], refs[h][1], refs[h][3]
            t_ref[i] = np.nan if refs[h][2] is None else refs[h][2]
    df["gain_ref"] = gain_ref
    df["proven"] = proven
    df["ref_source"] = source
    gain = df["gain"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gain_ref > _ZERO, gain / gain_ref, np.where(proven | (gain_ref <= _ZERO), 1.0, np.nan))
        lat = df["latency"].to_numpy(dtype=float)
        lratio = np.where(t_ref > 0, lat / t_ref, np.nan)
    ratio = np.where(ok.to_numpy() & ~np.isnan(gain_ref), ratio, np.nan)
    df["ratio"] = ratio
    df["certified"] = ~proven & ~np.isnan(ratio)
    df["latency_ratio"] = np.where(ok.to_numpy(), lratio, np.nan)
    df["best_gain"] = df.assign(_g=np.where(ok, df["gain"], np.nan)).groupby("instance_hash")["_g"].transform("max")
    return df


def _check_group(group_by: Sequence[str]) -> list[str]:
    cols = [c.strip() for c in group_by if c.strip()]
    bad = [c for c in cols if c not in GROUP_COLUMNS]
    if bad:
        raise InputError("--group-by", ("", f"unknown column {bad[0]!r}; valid: {', '.join(GROUP_COLUMNS)}"))
    if not cols:
        raise InputError("--group-by", ("", "no column given"))
    return cols


def _stats(r: np.ndarray, lr: np.ndarray) -> tuple[float, float, float, float]:
    """mean, min, 5th percentile of ratios ``r``; mean of latency ratios ``lr`` (NaN when empty)."""
    if not len(r):
        return math.nan, math.nan, math.nan, float(lr.mean()) if len(lr) else math.nan
    return (float(r.mean()), float(r.min()), float(np.percentile(r, 5)),
            float(lr.mean()) if len(lr) else math.nan)


def ratio_table(df: pd.DataFrame, group_by: Sequence[str] = ("family", "algorithm")) -> pd.DataFrame:
    """The ratio table, one row per group (rows of :func:`with_ratios`).

    Columns (:data:`RATIO_COLUMNS`): ``runs``; ``instances`` with a ratio;
    against a proven optimum: ``proven`` (instances), ``mean_ratio``,
    ``min_ratio``, ``p5_ratio`` (exact ratios ``R(alg) / R(opt)`` over the
    runs on those instances) and ``mean_latency_ratio`` (``T(alg) / T(opt)``);
    against a bound only: ``certified`` (instances), ``cert_mean_ratio``,
    ``cert_min_ratio`` (``R(alg) / R_upper``, lower bounds on the true
    ratios, so their mean and minimum are lower bounds on the true mean and
    minimum over those runs) and ``cert_mean_latency_ratio`` (``T(alg) / T_lb``,
    an upper bound); ``median_runtime_s``; ``failed`` (error or infeasible rows);
    and ``median_oracle_calls`` when any row counts oracle calls (MoE² methods).
    The two kinds are never averaged together.
    """
    cols = _check_group(group_by)
    if "ratio" not in df.columns:
        df = with_ratios(df)
    df = df[~df["name"].isin(BOUND_ONLY)]
    oracle = "oracle_calls" in df.columns and df["oracle_calls"].notna().any()
    out = []
    for key, g in df.groupby(cols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rated = g[g["ratio"].notna()]
        exact, cert = rated[rated["proven"]], rated[~rated["proven"]]
        mean, low, p5, lat = _stats(exact["ratio"].to_numpy(dtype=float),
                                    exact["latency_ratio"].dropna().to_numpy(dtype=float))
        c_mean, c_low, _, c_lat = _stats(cert["ratio"].to_numpy(dtype=float),
                                         cert["latency_ratio"].dropna().to_numpy(dtype=float))
        rt = g.loc[g["status"] != "error", "runtime_s"].dropna().to_numpy(dtype=float)
        failed = int(((g["status"] == "error") | (g["feasible"].fillna(0).astype(int) == 0)).sum())
        out.append({
            **dict(zip(cols, key)),
            "runs": int(len(g)),
            "instances": int(rated["instance_hash"].nunique()),
            "proven": int(exact["instance_hash"].nunique()),
            "mean_ratio": mean, "min_ratio": low, "p5_ratio": p5, "mean_latency_ratio": lat,
            "certified": int(cert["instance_hash"].nunique()),
            "cert_mean_ratio": c_mean, "cert_min_ratio": c_low, "cert_mean_latency_ratio": c_lat,
            "median_runtime_s": float(np.median(rt)) if len(rt) else math.nan,
            "failed": failed,
        })
        if oracle:
            oc = pd.to_numeric(g["oracle_calls"], errors="coerce").dropna().to_numpy(dtype=float)
            out[-1]["median_oracle_calls"] = float(np.median(oc)) if len(oc) else math.nan
    table = pd.DataFrame(out, columns=[*cols, *RATIO_COLUMNS, *(["median_oracle_calls"] if oracle else [])])
    if "algorithm" in cols and len(table):  # known algorithms in their fixed order within each group
        table = table.sort_values(cols, key=lambda c: c.map(algorithm_rank) if c.name == "algorithm" else c,
                                  kind="stable").reset_index(drop=True)
    return table


def _stop(info: Any, status: str) -> str:
    """Why an exact-reference run stopped: ``solved``, ``work limit``, ``time limit``, ``interrupted`` or
    the raw reason (from the solver's ``info["stopped_by"]`` when it has one, else its termination)."""
    stopped = info.get("stopped_by") if isinstance(info, dict) else None
    if status in WALL_STOPS or stopped == "time_limit":
        return "time limit"
    if stopped == "node_limit":
        return "work limit"
    if stopped == "interrupt":
        return "interrupted"
    tc = info.get("termination_condition") if isinstance(info, dict) else None
    if tc in (None, "convergenceCriteriaSatisfied", "trivial") and status == "optimal":
        return "solved"
    if tc == "convergenceCriteriaSatisfied":
        return "solved, gap above tolerance"
    if tc == "iterationLimit":
        return "work limit"
    if tc == "maxTimeLimit":
        return "time limit"
    return str(tc or status)


def proof_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per instance: where its reference comes from and what stopped its exact runs.

    Columns: ``family``, ``suite``, ``instance``, ``instance_hash``,
    ``reference`` (``optimum``, ``bound`` or ``none``), ``source`` (label of the
    row that gives it), ``gain_ref``, ``best_gain`` (best feasible gain of any
    row), ``gap`` (``(gain_ref - best_gain) / gain_ref``: the certified gap left
    open, 0 when proven), ``exact_stop`` (how each exact-reference run
    stopped: ``solved``, ``work limit``, ``time limit``; several are joined by
    ``;`` in label order), ``nodes`` (largest branch-and-bound node count of
    those runs), ``wall_stopped`` (runs of the instance, of any algorithm,
    stopped by a wall clock: their outcome depends on machine speed) and
    ``consistent`` (no feasible gain exceeds the reference by more than
    :data:`CONSISTENCY_RTOL`; ``False`` means a bound or an optimality claim
    is wrong).
    """
    if "ratio" not in df.columns:
        df = with_ratios(df)
    out = []
    for h, g in df.groupby("instance_hash", sort=False):
        fam = FAMILIES.get(str(g["family"].iloc[0]))
        exact_names = fam.exact_names if fam is not None else ()
        ex = g[g["name"].isin(exact_names)].sort_values("algorithm")
        first = g.iloc[0]
        proven, gref, best = bool(first["proven"]), float(first["gain_ref"]), float(first["best_gain"])
        has_ref = not math.isnan(gref)
        tol = CONSISTENCY_RTOL * max(abs(gref), _ZERO) if has_ref else 0.0
        nodes = [n for n in (i.get("mip_node_count") if isinstance(i, dict) else None for i in ex["info"])
                 if n is not None]
        out.append({
            "family": first["family"], "suite": first["suite"], "instance": first["instance_name"],
            "instance_hash": h,
            "reference": "optimum" if proven else "bound" if has_ref else "none",
            "source": first["ref_source"] if has_ref else None,
            "gain_ref": gref, "best_gain": best,
            "gap": (0.0 if proven else max(0.0, (gref - best) / gref) if has_ref and gref > _ZERO
                    and not math.isnan(best) else math.nan),
            "exact_stop": "; ".join(_stop(i, st) for i, st in zip(ex["info"], ex["status"])) or None,
            "nodes": max(nodes) if nodes else None,
            "wall_stopped": int(g["status"].isin(WALL_STOPS).sum()),
            "consistent": bool(not has_ref or math.isnan(best) or best <= gref + tol),
        })
    cols = ["family", "suite", "instance", "instance_hash", "reference", "source", "gain_ref", "best_gain", "gap",
            "exact_stop", "nodes", "wall_stopped", "consistent"]
    return pd.DataFrame(out, columns=cols).sort_values(["family", "suite", "instance"]).reset_index(drop=True)


def formulation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Compare MILP formulations on the caching instances with a proven optimum.

    For each formulation ``F`` (``lp-bound[formulation=F]`` rows and
    ``exact[formulation=F]`` rows; ``exact`` without the parameter counts as
    ``level``, the solver's default): ``instances`` with both an LP bound and a
    proven optimum, ``lp_over_opt`` = mean ``T_LP / T(opt)`` (<= 1), ``root_gap`` =
    mean ``(T(opt) - T_LP) / T(opt)``, ``r_gap`` = mean ``(R_LP - R(opt)) / R(opt)``
    (the relaxation's overestimate of the reduction), median LP time, number of
    exact solves on the instances with an LP bound of ``F`` (so both
    formulations are timed on the same instances), how many were proven
    optimal and their median solve time.
    """
    if "ratio" not in df.columns:
        df = with_ratios(df)
    df = df[df["family"] == "caching"]
    out = []
    forms: set[str] = set()
    pdicts = [json.loads(p) for p in df["params"]]
    form = []
    for name, p in zip(df["name"], pdicts):
        f = p.get("formulation", "level") if name in ("lp-bound", "exact") else None
        form.append(f)
        if f is not None:
            forms.add(f)
    df = df.assign(formulation=form)
    for f in sorted(forms):
        lp = df[(df["name"] == "lp-bound") & (df["formulation"] == f) & df["bound"].notna()]
        lp_ok = lp[lp["proven"]]
        t_opt = []
        for _, r in lp_ok.iterrows():
            opt_lat = r["empty_latency"] - r["gain_ref"]
            t_opt.append(opt_lat)
        t_opt = np.asarray(t_opt, dtype=float)
        lpv = lp_ok["bound"].to_numpy(dtype=float)
        r_opt = lp_ok["gain_ref"].to_numpy(dtype=float)
        r_lp = lp_ok["gain_upper"].to_numpy(dtype=float)
        ex = df[(df["name"] == "exact") & (df["formulation"] == f) & (df["status"] != "error")
                & df["instance_hash"].isin(set(lp["instance_hash"]))]
        exo = ex[ex["status"] == "optimal"]
        with np.errstate(divide="ignore", invalid="ignore"):
            rgap = np.where(r_opt > _ZERO, (r_lp - r_opt) / r_opt, np.nan)
        out.append({
            "formulation": f,
            "instances": int(lp_ok["instance_hash"].nunique()),
            "lp_over_opt": float(np.mean(lpv / t_opt)) if len(lpv) else math.nan,
            "root_gap": float(np.mean((t_opt - lpv) / t_opt)) if len(lpv) else math.nan,
            "r_gap": float(np.nanmean(rgap)) if np.isfinite(rgap).any() else math.nan,
            "median_lp_s": float(lp["runtime_s"].median()) if len(lp) else math.nan,
            "exact_runs": int(len(ex)),
            "exact_optimal": int(len(exo)),
            "median_exact_s": float(exo["runtime_s"].median()) if len(exo) else math.nan,
        })
    return pd.DataFrame(out)


# ------------------------------------------------------------------ formatting
_HEADERS = {
    "family": "family", "suite": "suite", "algorithm": "algorithm", "name": "algorithm", "params": "parameters",
    "top_k": "top-k", "L": "L", "N": "N", "U": "U", "cap_frac": "capacity", "seed": "seed",
    "instance_name": "instance", "runs": "runs", "instances": "instances", "proven": "proven opt.",
    "mean_ratio": "mean ratio", "min_ratio": "min ratio", "p5_ratio": "5th pct ratio",
    "mean_latency_ratio": "mean T/T*", "certified": "bound only", "cert_mean_ratio": "cert. mean ratio",
    "cert_min_ratio": "cert. min ratio", "cert_mean_latency_ratio": "cert. mean T/T_lb",
    "median_runtime_s": "median time (s)", "failed": "failed", "median_oracle_calls": "median oracle calls",
    "formulation": "formulation", "lp_over_opt": "LP / T*", "root_gap": "root gap",
    "r_gap": "R gap", "median_lp_s": "median LP (s)", "exact_runs": "MILP runs",
    "exact_optimal": "proven opt.", "median_exact_s": "median MILP (s)",
    "regime": "regime", "claimed": "claimed", "checked": "checked", "margin": "margin",
    "violations": "violations", "inconclusive": "inconclusive", "reference": "reference",
    "instance": "instance", "instance_hash": "hash", "source": "source", "gain_ref": "reference gain",
    "best_gain": "best gain", "gap": "open gap", "exact_stop": "exact stopped by", "nodes": "B&B nodes",
    "wall_stopped": "wall-clock stops", "consistent": "consistent",
    "claim": "claim", "verified": "verified", "refuted": "refuted",
    "size": "size", "T_empty": "T(empty)", "bound": "bound", "bound_method": "bound method",
    "bound_s": "bound at (s)", "best_latency": "best latency", "latency_method": "latency method",
    "latency_s": "latency at (s)", "certified_gap": "certified gap", "not_finished": "not finished",
}
_RATIO_COLS = ("mean_ratio", "min_ratio", "p5_ratio", "mean_latency_ratio", "cert_mean_ratio", "cert_min_ratio",
               "cert_mean_latency_ratio", "lp_over_opt", "root_gap", "r_gap", "claimed", "min_ratio", "margin",
               "ratio", "latency_ratio", "gap")
_COUNT_COLS = ("runs", "instances", "proven", "certified", "failed", "exact_runs", "exact_optimal", "checked",
               "violations", "inconclusive", "verified", "refuted", "nodes", "wall_stopped", "median_oracle_calls")

#: LaTeX header of a column: (header group, header); a group spans its neighbours with a \cmidrule.
_LATEX_HEADERS: dict[str, dict[str, tuple[str, str]]] = {
    "ratios": {
        "runs": ("", "runs"), "instances": ("", "inst."),
        "proven": ("proven optimum", "$n$"), "mean_ratio": ("proven optimum", "mean"),
        "min_ratio": ("proven optimum", "min"), "p5_ratio": ("proven optimum", r"5\,\%"),
        "mean_latency_ratio": ("proven optimum", "$T/T^*$"),
        "certified": ("bound only", "$n$"), "cert_mean_ratio": ("bound only", "mean"),
        "cert_min_ratio": ("bound only", "min"), "cert_mean_latency_ratio": ("bound only", r"$T/\underline{T}$"),
        "median_runtime_s": ("", "time (s)"), "failed": ("", "failed"), "median_oracle_calls": ("", "oracle calls"),
    },
    "formulations": {
        "formulation": ("", "formulation"), "instances": ("", "$n$"),
        "lp_over_opt": ("LP relaxation", r"$T_{\mathrm{LP}}/T^*$"), "root_gap": ("LP relaxation", "root gap"),
        "r_gap": ("LP relaxation", "$R$ gap"), "median_lp_s": ("LP relaxation", "time (s)"),
        "exact_runs": ("MILP", "runs"), "exact_optimal": ("MILP", "opt."), "median_exact_s": ("MILP", "time (s)"),
    },
    "guarantees": {
        "algorithm": ("", "algorithm"), "regime": ("", "regime"), "claimed": ("", "claim"),
        "checked": ("", "runs"), "proven": ("", "proven"), "min_ratio": ("", "min ratio"),
        "margin": ("", "margin"), "violations": ("", "viol."), "inconclusive": ("", "incon."),
        "reference": ("", "reference"),
    },
}

#: Widths of an IEEE two-column page (IEEEtran, 10 pt): one column and the full text width, in points.
COLUMN_PT, PAGE_PT = 252.0, 516.0
#: Table body font (``\footnotesize`` in a 10 pt document) and the column padding used by :func:`format_table`.
TABLE_FONT_PT, TABCOLSEP_PT = 8.0, 4.0
#: Prose columns (cells with spaces) longer than this many characters wrap in a ``p`` column this many points wide.
WRAP_CHARS, WRAP_PT, MIN_WRAP_PT = 28, 150.0, 60.0
#: The width estimate is multiplied by this: measured against pdflatex it was within 1 % (never above).
WIDTH_MARGIN = 1.02

_TIMES: dict[str, float] = {}


def _times_widths() -> dict[str, float]:
    """Advance widths (em) of Times Roman, the text font of IEEEtran, from the AFM file matplotlib ships."""
    if not _TIMES:
        import matplotlib

        afm = Path(matplotlib.get_data_path()) / "fonts" / "pdfcorefonts" / "Times-Roman.afm"
        for line in afm.read_text(encoding="latin-1").splitlines():
            m = re.match(r"C (\d+) ; WX (\d+) ;", line)
            if m and 32 <= int(m.group(1)) < 127:
                _TIMES[chr(int(m.group(1)))] = int(m.group(2)) / 1000.0
    return _TIMES


def _text_pt(text: str, size: float = TABLE_FONT_PT) -> float:
    """Width of ``text`` (LaTeX source; commands, braces and ``$`` dropped) in Times at ``size`` points."""
    widths = _times_widths()
    plain = re.sub(r"\\[a-zA-Z]+\*?|[{}$^\\]", "", text)
    return size * sum(widths.get(c, 0.5) for c in plain)


def _prose(width: float) -> str:
    """A ragged-right paragraph column ``width`` points wide (``>{...}`` comes with siunitx's ``array``)."""
    return rf">{{\raggedright\arraybackslash}}p{{{width:.0f}pt}}"


def _total(widths: Sequence[float]) -> float:
    """Estimated width of a tabular: the columns, their padding and a safety margin."""
    return WIDTH_MARGIN * (sum(widths) + 2 * TABCOLSEP_PT * len(widths))


def _kind(col: str, series: pd.Series, group: bool) -> str:
    if group:
        return "text"
    if col in _COUNT_COLS:
        return "count"
    if col in _RATIO_COLS:
        return "ratio"
    if col.endswith("_s"):
        return "time"
    return "number" if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series) else "text"


def _cell(col: str, v: Any, decimals: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if col in _RATIO_COLS:
            return f"{v:.{decimals}f}"
        if col.endswith("_s"):
            return f"{v:.3g}"
        if float(v).is_integer():
            return str(int(v))
        return f"{v:.3g}"
    return str(v)


def _fixed(v: float, figures: int = 2, max_decimals: int = 3) -> str:
    """``v`` in fixed point with ``figures`` significant figures (at most ``max_decimals`` decimals)."""
    if v == 0:
        return "0"
    d = min(max_decimals, max(0, figures - 1 - math.floor(math.log10(abs(v)))))
    return f"{v:.{d}f}"


def _s_column(kind: str, values: list[float | None], decimals: int) -> tuple[str, list[str], float, float]:
    """A siunitx ``S`` column for numbers: its spec, the cells (``{--}`` for a missing value), the
    estimated width in points of its widest number, and the scale applied (1000 for times in ms)."""
    finite = [v for v in values if v is not None]
    scale = 1.0
    if kind == "time":
        scale = 1.0 if finite and min(finite) >= 0.1 else 1000.0
        text = [_fixed(v * scale) for v in finite]
    elif kind == "number":
        text = [_fixed(v, figures=4, max_decimals=6) for v in finite]
    else:
        dec = decimals if kind == "ratio" else 0
        text = [f"{v:.{dec}f}" for v in finite]
    ints = max([len(t.lstrip("-").split(".")[0]) for t in text] or [1])
    dec = max([len(t.split(".")[1]) if "." in t else 0 for t in text] or [0])
    sign = "-" if any(t.startswith("-") for t in text) else ""
    spec = f"S[table-format={sign}{ints}.{dec}]" if dec else f"S[table-format={sign}{ints}]"
    digit = _text_pt("0")
    # siunitx typesets numbers in math mode; 1.2 pt per column covers the difference to Times text
    # (measured against pdflatex on IEEEtran documents)
    width = (ints + dec + bool(sign)) * digit + (_text_pt(".") if dec else 0.0) + 1.2
    it = iter(text)
    return spec, [next(it) if v is not None else "{--}" for v in values], width, scale


def _table_kind(cols: Sequence[str]) -> str | None:
    if "regime" in cols:
        return "guarantees"
    if "formulation" in cols and "lp_over_opt" in cols:
        return "formulations"
    if set(cols) & set(RATIO_COLUMNS):
        return "ratios"
    return None


def _groups(table: pd.DataFrame, group_cols: Sequence[str]) -> list[int] | None:
    """Indices of the rows that start a new value of the first group column (row groups), or
    ``None`` when no group has two rows (then there is nothing to group)."""
    if not group_cols or len(table) < 2:
        return None
    first = table[group_cols[0]].tolist()
    starts = [i for i in range(1, len(first)) if first[i] != first[i - 1]]
    return starts if len(starts) + 1 < len(first) else None


def _latex(table: pd.DataFrame, *, caption: str | None, label: str | None, decimals: int,
           group_cols: Sequence[str]) -> str:
    """LaTeX through :meth:`Styler.to_latex`; see :func:`format_table`."""
    if label is not None and not re.fullmatch(r"[A-Za-z0-9:._/-]+", label):
        raise InputError("--label", ("", f"a LaTeX label is letters, digits and : . _ / -, got {label!r}"))
    cols = list(table.columns)
    heads = _LATEX_HEADERS.get(_table_kind(cols) or "", {})
    specs, columns, widths = [], [], []
    cells: dict[str, list[str]] = {}
    starts = _groups(table, group_cols)
    headings: list[str] = []
    if starts is not None:  # the first group column becomes a heading row above each group
        g = group_cols[0]
        name = escape_latex(_HEADERS.get(g, g))
        for i in [0, *starts]:
            v = table[g].iloc[i]
            text = escape_latex(_cell(g, v, decimals))
            headings.append(text if isinstance(v, str) else f"{name} = {text}")
        cols.remove(g)
    for c in cols:
        group, head = heads.get(c, ("", escape_latex(_HEADERS.get(c, c))))
        kind = "ratio" if c in table.attrs.get("ratio_columns", ()) else _kind(c, table[c], c in group_cols)
        if kind == "text":
            text = [escape_latex(_cell(c, v, decimals)) if v is not None else "--" for v in table[c]]
            plain = [_cell(c, v) for v in table[c]]
            if max([len(t) for t in plain] or [0]) > WRAP_CHARS and any(" " in t for t in plain):
                specs.append(_prose(WRAP_PT))
                widths.append(WRAP_PT)
            else:
                specs.append("l")
                widths.append(max([_text_pt(t) for t in text] or [0.0]))
            cells[c] = text
        else:
            values = [None if pd.isna(v) else float(v) for v in table[c]]
            spec, text, w, scale = _s_column(kind, values, decimals)
            if scale == 1000.0:
                head = head.replace("(s)", "(ms)")
            specs.append(spec)
            widths.append(w)
            cells[c] = text
        widths[-1] = max(widths[-1], _text_pt(head))
        columns.append((group, "{" + head + "}"))
    # a header group is at least as wide as its header
    spans: list[tuple[str, int, int]] = []
    for k, (group, _) in enumerate(columns):
        if group and spans and spans[-1][0] == group and spans[-1][2] == k:
            spans[-1] = (group, spans[-1][1], k + 1)
        elif group:
            spans.append((group, k, k + 1))
    for group, a, b in spans:
        need = _text_pt(group) - sum(widths[a:b]) - 2 * TABCOLSEP_PT * (b - a - 1)
        if need > 0:
            widths[b - 1] += need
    wrap = [k for k, sp in enumerate(specs) if "}p{" in sp]
    total = _total(widths)
    if wrap and total > PAGE_PT:  # narrow the prose columns until the table fits the page
        each = max(MIN_WRAP_PT, (PAGE_PT / WIDTH_MARGIN - (total - sum(widths[k] for k in wrap))) / len(wrap))
        for k in wrap:
            widths[k], specs[k] = each, _prose(each)
        total = _total(widths)
    total = max([total, *(WIDTH_MARGIN * _text_pt(h) for h in headings)])
    env = "table" if total <= COLUMN_PT else "table*"
    grouped = bool(spans)
    frame = pd.DataFrame({k: cells[c] for k, c in enumerate(cols)})
    frame.columns = (pd.MultiIndex.from_tuples([(g, h) for g, h in columns]) if grouped
                     else [h for _, h in columns])
    tex = frame.style.hide(axis="index").to_latex(
        column_format="".join(specs), hrules=True, multicol_align="c", caption=caption, label=label,
        position="t", position_float="centering", environment=env)
    lines = tex.splitlines()
    # the body font and padding, right after \centering
    k = lines.index(r"\centering")
    lines[k + 1:k + 1] = [r"\footnotesize", rf"\setlength{{\tabcolsep}}{{{TABCOLSEP_PT:g}pt}}"]
    top = lines.index(r"\toprule")
    if grouped:
        lines[top + 1] = re.sub(r"\\multicolumn\{(\d+)\}\{c\}\{\}", lambda m: " & ".join([""] * int(m.group(1))),
                                lines[top + 1]).replace("  ", " ")
        rules = "".join(rf"\cmidrule(lr){{{a + 1}-{b}}}" for _, a, b in spans)
        lines.insert(top + 2, rules)
    mid, end = lines.index(r"\midrule", top), lines.index(r"\bottomrule")
    heading = dict(zip([0, *(starts or [])], headings))
    body = []
    for i, row in enumerate(lines[mid + 1:end]):
        if i in heading:
            body += ([r"\midrule"] if i else []) + [rf"\multicolumn{{{len(cols)}}}{{@{{}}l}}{{\textit{{{heading[i]}}}}} \\"]
        body.append(row)
    lines[mid + 1:end] = body
    width = f"{total:.0f} pt estimated at {TABLE_FONT_PT:g} pt; one IEEE column is {COLUMN_PT:g} pt"
    head = [r"% requires \usepackage{booktabs,siunitx}", f"% {width}"]
    if total > PAGE_PT:
        head.append(f"% WARNING: wider than a page ({PAGE_PT:g} pt): choose fewer columns")
    return "\n".join(head + lines) + "\n"


def format_table(table: pd.DataFrame, fmt: str = "markdown", *, caption: str | None = None,
                 label: str | None = None, decimals: int = 4, group_cols: Sequence[str] = ()) -> str:
    r"""Render a table as ``markdown`` (pipe table), ``latex`` or ``csv`` (raw values, full precision).

    LaTeX goes through :meth:`pandas.io.formats.style.Styler.to_latex`: a
    ``table`` (or ``table*`` when the estimated width exceeds
    :data:`COLUMN_PT`) with booktabs rules, ``caption`` (LaTeX source: escape
    any user text in it with :func:`.escape.escape_latex`) and ``\label{label}`` above
    the tabular, ``\footnotesize`` body, siunitx ``S`` columns for numbers
    (ratios with ``decimals`` decimals, times to two significant figures),
    header groups (e.g. *proven optimum* / *bound only*) with ``\cmidrule``
    and, when the first of ``group_cols`` repeats a value on consecutive rows,
    row groups: that column becomes an italic heading row above each group
    (``small``; ``top-k = 2`` for a number), with a ``\midrule`` between
    groups.  Every cell goes through :func:`.escape.escape_latex`.  Needs
    ``\usepackage{booktabs,siunitx}``.

    A table builder may ask for more: ``table.attrs["formats"]`` maps a column
    to a format spec for its markdown cells (e.g. ``".6f"``, ``".3%"``), and the
    columns in ``table.attrs["ratio_columns"]`` are ratios in LaTeX (e.g. the
    per-algorithm columns of the certified table).
    """
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "latex":
        return _latex(table, caption=caption, label=label, decimals=decimals, group_cols=list(group_cols))
    if fmt != "markdown":
        raise InputError("--format", ("", f"unknown format {fmt!r}; valid: markdown, latex, csv"))
    cols = list(table.columns)
    heads = [_HEADERS.get(c, c) for c in cols]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and c not in group_cols for c in cols]
    formats = table.attrs.get("formats", {})  # per-column format specs a table builder asks for

    def cell(c: str, v: Any) -> str:
        if c in formats and isinstance(v, (float, np.floating)) and not math.isnan(v):
            return format(v, formats[c])
        return _cell(c, v, decimals)

    body = [[cell(c, v) for c, v in zip(cols, row)] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(escape_markdown(h) for h in heads) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(escape_markdown(x) for x in r) + " |" for r in body]
    return "\n".join(lines) + "\n"


def select_columns(table: pd.DataFrame, group_cols: Sequence[str], columns: str | Sequence[str] | None) -> pd.DataFrame:
    """The group columns, then the value columns ``columns`` of a ratio table.

    ``columns`` is a name of :data:`COLUMN_SETS` (``all``, ``paper``, ``proven``,
    ``certified``), a comma-separated string or a list of column names; ``None``
    means ``all``.  ``paper`` drops the *proven* or the *bound only* columns
    when no row has such instances.
    """
    if columns is None:
        columns = "all"
    if isinstance(columns, str):
        if columns in COLUMN_SETS:
            chosen = [c for c in COLUMN_SETS[columns] if c in table.columns]
            if columns == "paper":
                for count, group in (("proven", COLUMN_SETS["proven"][:5]),
                                     ("certified", COLUMN_SETS["certified"])):
                    if count in table.columns and not (table[count] > 0).any():
                        chosen = [c for c in chosen if c not in group]
            if columns == "all" and "median_oracle_calls" in table.columns:
                chosen.append("median_oracle_calls")
            columns = chosen
        else:
            columns = [c.strip() for c in columns.split(",") if c.strip()]
    valid = [c for c in table.columns if c not in group_cols]
    bad = [c for c in columns if c not in valid]
    if bad:
        raise InputError("--columns", ("", f"unknown column {bad[0]!r}; valid: {', '.join(COLUMN_SETS)} "
                                           f"or a comma-separated list of {', '.join(valid)}"))
    if not columns:
        raise InputError("--columns", ("", "no column chosen"))
    return table[[*group_cols, *columns]]


def ratio_caption(columns: Sequence[str], family: str | None = None) -> str:
    """The LaTeX caption of a ratio table, explaining exactly the columns shown."""
    gain = r"R" if family != "moe2" else r"F"
    parts = [rf"Empirical ratio ${gain}(\mathrm{{alg}})/{gain}(\mathrm{{opt}})$ on the instances with a proven "
             r"optimum"]
    if any(c.startswith("cert_") or c == "certified" for c in columns):
        parts.append(rf" and, on the others, the certified lower bound ${gain}(\mathrm{{alg}})/\bar{{{gain}}}$ "
                     rf"with $\bar{{{gain}}}$ the smallest proven upper bound on ${gain}(\mathrm{{opt}})$ from any "
                     r"run (never averaged together)")
    parts.append(r"; $n$: instances")
    if "mean_latency_ratio" in columns:
        parts.append(r"; $T/T^*$: mean latency ratio")
    if "cert_mean_latency_ratio" in columns:
        parts.append(r"; $T/\underline{T}$: mean upper bound on it from the proven lower bound "
                     r"$\underline{T}$")
    if "p5_ratio" in columns:
        parts.append(r"; 5\,\%: 5th percentile")
    if "median_runtime_s" in columns:
        parts.append("; time: median solve time, wall clock (unit in the header)")
    return "".join(parts) + "."


CERTIFIED_CAPTION = (r"Per instance: the best proven bound and the best latency of any method, the certified "
                     r"gap, and each algorithm's ratio $R(\mathrm{alg})/\bar{R}$ against the smallest proven "
                     r"upper bound $\bar{R}$ on $R(\mathrm{opt})$: a certified lower bound on its true ratio "
                     r"(reference: bound), exact where a proven optimum exists (reference: optimum).")

#: Columns of the proof table in LaTeX (the others are kept in markdown and CSV).
PROOF_LATEX_COLUMNS = ("suite", "instance", "reference", "source", "gap", "exact_stop", "nodes", "wall_stopped")
PROOF_CAPTION = (r"Reference of each instance: a proven optimum, or the smallest proven upper bound on "
                 r"$R(\mathrm{opt})$ from any run (source) with the gap it leaves open; how the exact runs "
                 r"stopped, their branch-and-bound nodes and the runs stopped by a wall clock.")

FORMULATION_CAPTION = (r"MILP formulations on the instances with a proven optimum $T^*$: LP relaxation bound "
                       r"$T_{\mathrm{LP}}/T^*$, root gap $(T^*-T_{\mathrm{LP}})/T^*$, overestimate of the "
                       r"reduction $(R_{\mathrm{LP}}-R^*)/R^*$ and median LP time; MILP runs, proven optima "
                       r"and their median solve time (wall clock; units in the header).")


def report(db: str, *, fmt: str = "markdown", group_by: Sequence[str] = ("family", "algorithm"),
           formulations: bool = True, table: str = "all", columns: str | Sequence[str] | None = None,
           label: str = "tab:ratios", decimals: int = 4) -> str:
    """The text ``slimcaching report`` prints.

    ``table`` is ``"ratios"``, ``"formulations"``, ``"proofs"`` (one row per
    instance, :func:`proof_table`), ``"certified"`` (one row per caching
    instance, :func:`slimcaching.analysis.certified.certified_table`) or
    ``"all"`` (the ratio table, then the formulation table when there is one,
    separated by a blank line).
    ``columns`` picks the ratio table's value columns (:func:`select_columns`;
    default ``all``, for LaTeX ``paper``).  ``label`` is the ratio table's
    LaTeX label; the formulation table gets ``tab:formulations``, the proof
    table ``tab:proofs``, the certified table ``tab:certified``.
    """
    if table not in TABLES:
        raise InputError("--table", ("", f"unknown table {table!r}; valid: {', '.join(TABLES)}"))
    df = with_ratios(load_frame(db))
    if df.empty:
        raise InputError(str(db), ("", "the results database holds no runs"))
    if table == "proofs":
        pt = proof_table(df)
        if fmt == "latex":
            pt = pt[list(PROOF_LATEX_COLUMNS)]
        return format_table(pt, fmt, caption=PROOF_CAPTION, label="tab:proofs", decimals=decimals,
                            group_cols=["suite"])
    if table == "certified":
        from .certified import certified_table

        return format_table(certified_table(df), fmt, caption=CERTIFIED_CAPTION, label="tab:certified",
                            decimals=decimals)
    ft = formulation_table(df)
    if table == "formulations":
        if not len(ft):
            raise InputError(str(db), ("", "no lp-bound runs next to a proven optimum: run "
                                           "lp-bound[formulation=level] and exact first"))
        return format_table(ft, fmt, caption=FORMULATION_CAPTION, label="tab:formulations", decimals=decimals)
    cols = _check_group(group_by)
    rt = select_columns(ratio_table(df, cols), cols,
                        columns if columns is not None else "paper" if fmt == "latex" else "all")
    fams = set(df["family"])
    cap = ratio_caption(list(rt.columns), next(iter(fams)) if len(fams) == 1 else None)
    parts = [format_table(rt, fmt, caption=cap, label=label, decimals=decimals, group_cols=cols)]
    if formulations and table == "all" and len(ft):
        parts.append(format_table(ft, fmt, caption=FORMULATION_CAPTION, label="tab:formulations",
                                  decimals=decimals))
    return "\n".join(parts)
