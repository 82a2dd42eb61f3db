"""Tables from a results store: empirical ratios and formulation comparisons.

The *reference* of an instance is taken from its exact-reference rows (the
family's ``exact_names``, any parameters or seed):

* when one of them is proven ``optimal``: ``gain(opt)`` is its gain (the
  largest among optimal rows) and ratios are **exact**;
* when some row's proven bound is met by a feasible row (relative latency gap
  at most ``1e-6``, e.g. a ``certify`` or ``decompose`` run that closed its
  gap), that feasible row is a proven optimum too and ratios are **exact**;
* otherwise the smallest stored upper bound ``gain_upper`` over all rows of
  the instance (time-limited exact runs, LP bounds, ``decompose``, ``lns``,
  ``certify``) is used and the ratio ``gain(alg) / gain_upper`` is a
  **certified lower bound** on the true ratio.

For caching, ``gain = R(x) = T(empty) - T(x)`` and ``gain_upper = T(empty) -
T_lb``; the latency ratio ``T(alg) / T(opt)`` is exact on proven rows and
``T(alg) / T_lb`` (an upper bound on it) otherwise.  When ``gain(opt) = 0``
(nothing can be gained, e.g. no capacity) every feasible placement is optimal
and the ratio is defined as 1.  Infeasible and failed runs get no ratio and
are counted separately.

Table columns: number of rows (``runs``) and distinct instances, how many
instances have a proven optimum, mean / minimum / 5th-percentile empirical
ratio (numpy's linear interpolation), mean latency ratio, median runtime, and
the same mean / minimum split into **exact** ratios (instances with a proven
optimum) and **certified** ratios (instances with a bound only), labelled
separately so that the two are never averaged together unknowingly.
"""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from .escape import escape_latex, escape_markdown
from .families import FAMILIES
from .store import ResultStore

__all__ = ["GROUP_COLUMNS", "load_frame", "with_ratios", "ratio_table", "formulation_table",
           "format_table", "report"]

#: Columns a ratio table may be grouped by.
GROUP_COLUMNS = ("family", "suite", "algorithm", "name", "params", "top_k", "L", "N", "U", "cap_frac",
                 "seed", "instance_name")

#: Pseudo-algorithms that produce bounds, not placements (kept out of ratio tables).
BOUND_ONLY = ("lp-bound",)

_ZERO = 1e-12

#: A bound within this relative latency gap of a feasible latency proves that latency optimal.
PROVEN_GAP = 1e-6


def _label(name: str, params: str) -> str:
    p = json.loads(params) if isinstance(params, str) else dict(params or {})
    if not p:
        return name
    return f"{name}[{','.join(f'{k}={json.dumps(v) if not isinstance(v, str) else v}' for k, v in sorted(p.items()))}]"


def load_frame(db: str | Any) -> pd.DataFrame:
    """All rows of a store (path or :class:`ResultStore`) with derived columns
    ``name`` (the algorithm), ``algorithm`` (name with parameters) and ``suite``."""
    if isinstance(db, ResultStore):
        df = db.frame()
    else:
        if not Path(str(db)).is_file():
            raise InputError(str(db), ("", "no such results database"))
        try:
            with ResultStore(db) as st:
                df = st.frame()
        except (sqlite3.DatabaseError, UnicodeDecodeError, ValueError) as exc:  # corrupt, truncated, not SQLite
            raise InputError(str(db), ("", f"not a readable results database: {str(exc).splitlines()[0]}")) from None
    df = df.copy()
    df["name"] = df["algorithm"]
    df["algorithm"] = [_label(a, p) for a, p in zip(df["name"], df["params"])]
    df["suite"] = [Path(p).parent.name if isinstance(p, str) else "" for p in df["instance_path"]]
    for c in ("gain", "gain_upper", "latency", "bound", "empty_latency", "runtime_s", "cap_frac"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def with_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Add the reference and ratio columns to every row.

    Added columns: ``gain_ref`` (``gain(opt)`` or the best upper bound),
    ``proven`` (the reference is a proven optimum), ``ratio`` (empirical ratio,
    exact when ``proven`` else a certified lower bound), ``latency_ratio``
    (caching only), ``best_gain`` (largest gain of any feasible row of the instance).
    """
    df = df.copy()
    ok = (df["status"] != "error") & (df["feasible"].fillna(0).astype(int) == 1) & df["gain"].notna()
    refs: dict[str, tuple[float, bool, float | None]] = {}
    for h, g in df.groupby("instance_hash"):
        fam = FAMILIES.get(str(g["family"].iloc[0]))
        exact_names = fam.exact_names if fam is not None else ()
        opt = g[g["name"].isin(exact_names) & (g["status"] == "optimal") & g["gain"].notna()]
        if len(opt):
            gref = float(opt["gain"].max())
            tref = float(opt["latency"].min()) if opt["latency"].notna().any() else None
            refs[h] = (gref, True, tref)
        elif g["gain_upper"].notna().any():
            gref = float(g["gain_upper"].min())
            tlb = None
            if g["empty_latency"].notna().any():
                tlb = float(g["empty_latency"].dropna().iloc[0]) - gref
            feas = g[ok.loc[g.index]]
            if tlb is not None and len(feas):
                best_gain = float(feas["gain"].max())
                t_best = tlb + gref - best_gain
                if t_best > 0 and gref - best_gain <= PROVEN_GAP * t_best:
                    refs[h] = (best_gain, True, t_best)  # the bound is met: a proven optimum
                    continue
            refs[h] = (gref, False, tlb)
    gain_ref = np.full(len(df), np.nan)
    proven = np.zeros(len(df), dtype=bool)
    t_ref = np.full(len(df), np.nan)
    for i, h in enumerate(df["instance_hash"]):
        if h in refs:
            gain_ref[i], proven[i] = refs[h][0], refs[h][1]
            t_ref[i] = np.nan if refs[h][2] is None else refs[h][2]
    df["gain_ref"] = gain_ref
    df["proven"] = proven
    gain = df["gain"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gain_ref > _ZERO, gain / gain_ref, np.where(proven | (gain_ref <= _ZERO), 1.0, np.nan))
        lat = df["latency"].to_numpy(dtype=float)
        lratio = np.where(t_ref > 0, lat / t_ref, np.nan)
    ratio = np.where(ok.to_numpy() & ~np.isnan(gain_ref), ratio, np.nan)
    df["ratio"] = ratio
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


def ratio_table(df: pd.DataFrame, group_by: Sequence[str] = ("family", "algorithm")) -> pd.DataFrame:
    """The ratio table, one row per group (rows of :func:`with_ratios`).

    Columns: ``runs``, ``instances``, ``proven`` (instances with a proven
    optimum), ``mean_ratio``, ``min_ratio``, ``p5_ratio``, ``mean_latency_ratio``,
    ``median_runtime_s``, ``failed`` (error or infeasible rows),
    ``exact_mean_ratio`` / ``exact_min_ratio`` (instances with a proven optimum),
    ``certified_instances``, ``certified_mean_ratio`` / ``certified_min_ratio``
    (instances with only a bound: certified lower bounds on the true ratio), and
    ``median_oracle_calls`` when any row counts oracle calls (MoE² methods).
    """
    cols = _check_group(group_by)
    if "ratio" not in df.columns:
        df = with_ratios(df)
    df = df[~df["name"].isin(BOUND_ONLY)]
    oracle = "oracle_calls" in df.columns and df["oracle_calls"].notna().any()
    out = []
    for key, g in df.groupby(cols, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        r = g["ratio"].dropna().to_numpy(dtype=float)
        lr = g["latency_ratio"].dropna().to_numpy(dtype=float)
        rt = g.loc[g["status"] != "error", "runtime_s"].dropna().to_numpy(dtype=float)
        failed = int(((g["status"] == "error") | (g["feasible"].fillna(0).astype(int) == 0)).sum())
        rated = g[g["ratio"].notna()]
        out.append({
            **dict(zip(cols, key)),
            "runs": int(len(g)),
            "instances": int(rated["instance_hash"].nunique()),
            "proven": int(rated.loc[rated["proven"], "instance_hash"].nunique()),
            "mean_ratio": float(r.mean()) if len(r) else math.nan,
            "min_ratio": float(r.min()) if len(r) else math.nan,
            "p5_ratio": float(np.percentile(r, 5)) if len(r) else math.nan,
            "mean_latency_ratio": float(lr.mean()) if len(lr) else math.nan,
            "median_runtime_s": float(np.median(rt)) if len(rt) else math.nan,
            "failed": failed,
        })
        exact = rated.loc[rated["proven"], "ratio"].to_numpy(dtype=float)
        cert = rated.loc[~rated["proven"], "ratio"].to_numpy(dtype=float)
        out[-1].update({
            "exact_mean_ratio": float(exact.mean()) if len(exact) else math.nan,
            "exact_min_ratio": float(exact.min()) if len(exact) else math.nan,
            "certified_instances": int(rated.loc[~rated["proven"], "instance_hash"].nunique()),
            "certified_mean_ratio": float(cert.mean()) if len(cert) else math.nan,
            "certified_min_ratio": float(cert.min()) if len(cert) else math.nan,
        })
        if oracle:
            oc = pd.to_numeric(g["oracle_calls"], errors="coerce").dropna().to_numpy(dtype=float)
            out[-1]["median_oracle_calls"] = float(np.median(oc)) if len(oc) else math.nan
    return pd.DataFrame(out)


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
    "mean_latency_ratio": "mean T/T*", "median_runtime_s": "median time (s)", "failed": "failed",
    "median_oracle_calls": "median oracle calls",
    "exact_mean_ratio": "exact mean ratio", "exact_min_ratio": "exact min ratio",
    "certified_instances": "certified inst.", "certified_mean_ratio": "certified mean ratio",
    "certified_min_ratio": "certified min ratio",
    "formulation": "formulation", "lp_over_opt": "LP / T*", "root_gap": "root gap",
    "r_gap": "R gap", "median_lp_s": "median LP (s)", "exact_runs": "MILP runs",
    "exact_optimal": "proven opt.", "median_exact_s": "median MILP (s)",
    "regime": "regime", "claimed": "claimed", "checked": "checked", "margin": "margin",
    "violations": "violations", "inconclusive": "inconclusive", "reference": "reference",
}
_RATIO_COLS = ("mean_ratio", "min_ratio", "p5_ratio", "mean_latency_ratio", "lp_over_opt", "root_gap", "r_gap",
               "claimed", "margin", "ratio", "latency_ratio", "exact_mean_ratio", "exact_min_ratio",
               "certified_mean_ratio", "certified_min_ratio")


def _cell(col: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        if col in _RATIO_COLS:
            return f"{v:.4f}"
        if col.endswith("_s"):
            return f"{v:.3g}"
        if float(v).is_integer():
            return str(int(v))
        return f"{v:.3g}"
    return str(v)


def format_table(table: pd.DataFrame, fmt: str = "markdown", *, caption: str | None = None) -> str:
    """Render a table as ``markdown`` (pipe table), ``latex`` (booktabs) or ``csv`` (raw values)."""
    if fmt == "csv":
        return table.to_csv(index=False)
    cols = list(table.columns)
    heads = [_HEADERS.get(c, c) for c in cols]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in cols]
    body = [[_cell(c, v) for c, v in zip(cols, row)] for row in table.itertuples(index=False)]
    if fmt == "markdown":
        lines = ["| " + " | ".join(escape_markdown(h) for h in heads) + " |",
                 "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
        lines += ["| " + " | ".join(escape_markdown(x) for x in r) + " |" for r in body]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        spec = "".join("r" if n else "l" for n in numeric)
        lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering"]
        if caption:
            lines.append(r"\caption{" + escape_latex(caption) + "}")
        lines += [r"\begin{tabular}{" + spec + "}", r"\toprule",
                  " & ".join(escape_latex(h) for h in heads) + r" \\", r"\midrule"]
        lines += [" & ".join(escape_latex(x) for x in r) + r" \\" for r in body]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    raise InputError("--format", ("", f"unknown format {fmt!r}; valid: markdown, latex, csv"))


def report(db: str, *, fmt: str = "markdown", group_by: Sequence[str] = ("family", "algorithm"),
           formulations: bool = True, table: str = "all") -> str:
    """The text ``slimcaching report`` prints.

    ``table`` is ``"ratios"``, ``"formulations"``, ``"certified"`` (one row per
    caching instance, :func:`slimcaching.analysis.certified.certified_table`) or
    ``"all"`` (the ratio table, then the formulation table when there is one,
    separated by a blank line).
    """
    if table not in ("all", "ratios", "formulations", "certified"):
        raise InputError("--table", ("", f"unknown table {table!r}; valid: all, ratios, formulations, certified"))
    df = with_ratios(load_frame(db))
    if df.empty:
        raise InputError(str(db), ("", "the results database holds no runs"))
    if table == "certified":
        from .certified import certified_table

        return format_table(certified_table(df), fmt, caption="Per instance: the best proven bound and the best "
                            "latency of any method, the certified gap, and each algorithm's ratio R(alg)/R_upper."
                            if fmt == "latex" else None)
    if table == "formulations":
        ft = formulation_table(df)
        if not len(ft):
            raise InputError(str(db), ("", "no lp-bound runs next to a proven optimum: run "
                                           "lp-bound[formulation=level] and exact first"))
        return format_table(ft, fmt, caption="MILP formulations: LP relaxation bounds, root gaps, solve times."
                            if fmt == "latex" else None)
    formulations = formulations and table == "all"
    parts = []
    rt = ratio_table(df, group_by)
    cap = ("Empirical ratio R(alg)/R(opt) (exact where proven optimal, certified lower bound "
           "R(alg)/R_upper otherwise) and latency ratio T(alg)/T(opt).")
    if fmt == "markdown":
        parts.append(format_table(rt, fmt))
    else:
        parts.append(format_table(rt, fmt, caption=cap))
    ft = formulation_table(df)
    if formulations and len(ft):
        if fmt == "markdown":
            parts.append(format_table(ft, fmt))
        elif fmt == "latex":
            parts.append(format_table(ft, fmt, caption="MILP formulations: LP relaxation bounds, root gaps, "
                                                       "solve times."))
        else:
            parts.append(format_table(ft, fmt))
    return "\n".join(parts)
