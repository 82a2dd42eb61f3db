"""Figures from a results store (matplotlib; every figure as PNG and PDF).

* ``latency_vs_<axis>_<suite>``: mean latency of each algorithm relative to
  the cloud-only latency, ``T / T(empty)`` (comparable across instances),
  against the storage capacity (fraction of the model per node), top-k or the
  number of nodes, for every suite in which that parameter varies (more than
  ``MAX_POINTS`` distinct values are binned); the exact optimum (mean over
  instances with a proven optimum) is the black dashed reference.
* ``ratio_<family>``: distribution of the empirical ratio per algorithm.
* ``runtime_scaling``: median runtime against problem size (log-log, sizes
  in log-spaced bins), with the least-squares slope of ``log median runtime``
  on ``log size`` in the legend.

Use :mod:`slimcaching.analysis.sweeps` to write grids where one parameter varies.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import write_bytes
from .report import BOUND_ONLY, load_frame, with_ratios

__all__ = ["AXES", "fit_slope", "make_figures"]

#: Row column -> axis label.
AXES = {"cap_frac": "storage capacity per node (fraction of the model)", "top_k": "top-k",
        "N": "number of nodes"}


def fit_slope(size: np.ndarray, runtime: np.ndarray) -> float:
    """Least-squares slope of ``log10 runtime`` on ``log10 size`` (NaN with < 2 sizes)."""
    size = np.asarray(size, dtype=float)
    runtime = np.asarray(runtime, dtype=float)
    ok = (size > 0) & (runtime > 0) & np.isfinite(size) & np.isfinite(runtime)
    if len(np.unique(size[ok])) < 2:
        return float("nan")
    return float(np.polyfit(np.log10(size[ok]), np.log10(runtime[ok]), 1)[0])


#: Most distinct x positions in a line plot; more values are binned.
MAX_POINTS = 8


def _bin(x: np.ndarray, bins: int, *, log: bool) -> np.ndarray:
    """Replace each value by the mean of its bin (equal-width bins, on a log scale
    with ``log``) when there are more than ``bins`` distinct values."""
    if len(np.unique(x)) <= bins:
        return x
    t = np.log(x) if log else x
    edges = np.linspace(t.min(), t.max(), bins + 1)
    idx = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, bins - 1)
    out = np.empty_like(x)
    for b in np.unique(idx):
        out[idx == b] = np.exp(t[idx == b].mean()) if log else t[idx == b].mean()
    return out


def _colours(algs: list[str]) -> dict[str, Any]:
    """One fixed colour per algorithm across all figures."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return {a: cmap(i % 20) for i, a in enumerate(algs)}


def _save(fig, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    for p in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=p.suffix[1:], bbox_inches="tight", dpi=150 if p.suffix == ".png" else None)
        write_bytes(buf.getvalue(), p)
    return paths


def _algorithms(df: pd.DataFrame) -> list[str]:
    return sorted(a for a in set(df["algorithm"]) if a.split("[")[0] not in BOUND_ONLY)


def make_figures(db: Any, out_dir: str | Path) -> list[Path]:
    """Write every figure the data supports; return the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = with_ratios(load_frame(db))
    ok = df[(df["status"] != "error") & (df["feasible"].fillna(0).astype(int) == 1)]
    ok = ok[~ok["name"].isin(BOUND_ONLY)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    caching = ok[ok["family"] == "caching"].copy()
    caching["rel_latency"] = caching["latency"] / caching["empty_latency"]
    colours = _colours(_algorithms(ok))
    exact_names = ("exact", "brute-force")
    for axis, label in AXES.items():
        for suite, g in caching.groupby("suite"):
            if g[axis].nunique() < 2:
                continue
            g = g.assign(_x=_bin(g[axis].to_numpy(dtype=float), MAX_POINTS, log=False))
            fig, ax = plt.subplots(figsize=(5.5, 3.8))
            heur = g[~g["name"].isin(exact_names)]
            for alg, ga in heur.groupby("algorithm"):
                m = ga.groupby("_x")["rel_latency"].mean()
                ax.plot(m.index, m.values, marker="o", ms=3, lw=1.2, label=alg, color=colours.get(alg))
            opt = g[g["name"].isin(exact_names) & (g["status"] == "optimal")]
            if len(opt):
                m = opt.groupby(["_x", "instance_hash"])["rel_latency"].min().groupby(level=0).mean()
                ax.plot(m.index, m.values, "k--", lw=1.6, label="exact optimum")
            ax.set_xlabel(label + (" (binned)" if g[axis].nunique() > MAX_POINTS else ""))
            ax.set_ylabel("mean latency T / T(cloud only)")
            ax.set_title(f"{suite}: latency vs {AXES[axis].split(' (')[0]} "
                         f"({g['instance_hash'].nunique()} instances)", fontsize=9)
            ax.legend(fontsize=7, ncol=2)
            ax.grid(alpha=0.3)
            written += _save(fig, out, f"latency_vs_{axis}_{suite}")
            plt.close(fig)
    for fam, g in ok.groupby("family"):
        g = g[g["ratio"].notna()]
        algs = _algorithms(g)
        if not algs:
            continue
        fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * len(algs) + 1.5), 3.8))
        data = [g.loc[g["algorithm"] == a, "ratio"].to_numpy() for a in algs]
        ax.boxplot(data, showmeans=True)
        ax.set_xticks(range(1, len(algs) + 1), algs, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("empirical ratio R(alg)/R(opt)" if fam == "caching" else "objective ratio")
        ax.set_title(f"{fam}: ratio distribution ({g['instance_hash'].nunique()} instances)", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        written += _save(fig, out, f"ratio_{fam}")
        plt.close(fig)
    sized = ok[ok["size"].notna() & (ok["runtime_s"] > 0)]
    if sized["size"].nunique() >= 2:
        sized = sized.assign(_x=_bin(sized["size"].to_numpy(dtype=float), MAX_POINTS, log=True))
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for alg, ga in sized.groupby("algorithm"):
            med = ga.groupby("_x")["runtime_s"].median()
            if len(med) < 2:
                continue
            slope = fit_slope(med.index.to_numpy(), med.to_numpy())
            ax.loglog(med.index, med.values, marker="o", ms=3, lw=1.2, label=f"{alg} (slope {slope:.2f})",
                      color=colours.get(alg))
        ax.set_xlabel("problem size (caching: N * sum_l E_l; MoE²: experts), log bins")
        ax.set_ylabel("median runtime (s)")
        ax.set_title("runtime scaling", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
        ax.grid(alpha=0.3, which="both")
        written += _save(fig, out, "runtime_scaling")
        plt.close(fig)
    return written
