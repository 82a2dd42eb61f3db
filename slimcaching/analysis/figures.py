r"""Figures for papers from a results store (matplotlib; every figure as PDF and PNG).

What a reviewer checks, and how this module answers:

* **Same instances on every line.**  Each point of every line averages the
  same instances: at each x, the instances on which *every* plotted algorithm
  has a feasible run (:func:`latency_points`).  The exact optimum is drawn
  only at the x where *all* of those instances have a proven optimum, so it
  can never sit above an algorithm for lack of instances.
* **Spread.**  95 % percentile-bootstrap confidence intervals over instances
  (2000 resamples, seeded, paired across lines): bands on continuous axes,
  error bars on discrete ones.
* **Discrete axes.**  top-k and the number of nodes are categories: integer
  tick labels, markers with error bars, no line joining k = 1, 2, 4, and the
  algorithms dodged sideways so none hides another.
* **Fonts.**  ``pdf.fonttype = 42``: TrueType (Type 42) fonts, no Type 3
  fonts (IEEE PDF eXpress and ACM reject them); 8 pt text throughout.
* **Colours.**  Paul Tol's colour-blind-safe *muted* palette, one colour and
  one marker per algorithm, fixed across figures; the optimum in black.
* **Layout.**  Legends outside the axes (below), no titles (the caption
  lives in LaTeX), widths of one IEEE column (3.5 in) or the full page
  (7.16 in), :data:`WIDTHS`.

Figures (``<family>`` = ``caching`` or ``moe2``):

``latency_vs_<axis>_<suite>``
    mean latency relative to cloud-only, ``T / T(empty)``, against the
    storage capacity, top-k or the number of nodes, in every suite where that
    parameter varies (more than :data:`MAX_POINTS` capacity values are binned).
``ratio_ecdf_<family>``
    ECDF of the exact empirical ratio ``R(alg)/R(opt)`` per algorithm, one
    panel per suite, over the instances with a proven optimum.
``profile_runtime_<family>``, ``profile_latency_caching`` / ``profile_objective_moe2``
    Dolan-Moré performance profiles (:mod:`.profiles`).
``runtime_scaling_<family>``
    median runtime against problem size (log-log, log-spaced bins) with the
    least-squares slope of ``log median runtime`` on ``log size`` in the legend.

Use :mod:`slimcaching.analysis.sweeps` to write grids where one parameter varies.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..fileio import write_bytes
from .columns import WIDTHS
from .profiles import bootstrap_ci, common_matrix, cost_matrix, ecdf, performance_profile, performance_ratios, \
    ratio_matrix
from .report import ALGORITHM_ORDER, BOUND_ONLY, algorithm_rank, load_frame, with_ratios

__all__ = ["AXES", "DISCRETE", "WIDTHS", "RC", "PALETTE", "MARKERS", "MAX_POINTS", "fit_slope", "styles",
           "latency_points", "scaling_points", "make_figures"]

#: Row column -> axis label.
AXES = {"cap_frac": "storage per node (fraction of the model)", "top_k": "top-$k$",
        "N": "edge nodes $N$"}
#: Axes whose values are categories (integers): markers and error bars, no joining lines.
DISCRETE = ("top_k", "N")
#: Most distinct x positions on a continuous axis; more values are binned.
MAX_POINTS = 8
#: Bootstrap resamples and seed of every confidence interval.
N_BOOT, BOOT_SEED = 2000, 0

#: matplotlib settings of every figure (applied in a context, global state is left alone).
RC = {
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
    "font.size": 8, "axes.labelsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8,
    "axes.titlesize": 8, "lines.linewidth": 1.0, "lines.markersize": 4, "errorbar.capsize": 1.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.linewidth": 0.4,
    "grid.alpha": 0.4, "legend.frameon": False, "legend.handlelength": 2.2, "legend.columnspacing": 1.0,
    "savefig.dpi": 300, "pdf.compression": 6,
}

#: Paul Tol's "muted" qualitative scheme (colour-blind safe), then a neutral grey.
PALETTE = ("#882255", "#CC6677", "#AA4499", "#332288", "#88CCEE", "#117733", "#44AA99", "#999933", "#DDCC77",
           "#777777")
MARKERS = ("o", "s", "D", "^", "v", "<", ">", "P", "X", "*", "h", "p", "d", "8")
_LINESTYLES = ("-", "--", "-.", ":")

#: Fixed style of the known algorithms: ours in warm colours, the paper's in blues and greens, baselines last;
#: the exact references in black (in latency plots they are the dashed optimum instead).
_BLACK = {"exact": ("black", "H", "-"), "brute-force": ("black", "d", "-")}
_KNOWN = tuple(a for a in ALGORITHM_ORDER if a not in _BLACK)
#: Continuous axes get confidence bands up to this many lines, error bars beyond (bands would overlap).
MAX_BANDS = 4
_KNOWN_LINE = {"best": "-", "polish": "-", "cyclic": "-", "successive": "--", "maxconv": "-.", "greedy": "--",
               "independent": ":", "popularity": ":", "random": ":", "cloud": ":"}
_EXACT = ("exact", "brute-force")
OPTIMUM = "optimum"


def fit_slope(size: np.ndarray, runtime: np.ndarray) -> float:
    """Least-squares slope of ``log10 runtime`` on ``log10 size`` (NaN with < 2 sizes)."""
    size = np.asarray(size, dtype=float)
    runtime = np.asarray(runtime, dtype=float)
    ok = (size > 0) & (runtime > 0) & np.isfinite(size) & np.isfinite(runtime)
    if len(np.unique(size[ok])) < 2:
        return float("nan")
    return float(np.polyfit(np.log10(size[ok]), np.log10(runtime[ok]), 1)[0])


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


def styles(algorithms: list[str]) -> dict[str, dict[str, Any]]:
    """One fixed (colour, marker, line style) per algorithm label, distinct among ``algorithms``.

    Known algorithms (or, without the plain name, their first parameter
    variant) keep their style in every figure; others (further variants,
    MoE² methods) take the unused colour/marker pairs in sorted order.  The
    optimum and the exact references are black.
    """
    out: dict[str, dict[str, Any]] = {OPTIMUM: {"color": "black", "marker": "", "linestyle": "--"}}
    used: set[tuple[str, str]] = set()
    taken: set[str] = set()
    for a in sorted(algorithms, key=lambda a: (len(a), a)):  # a known name, else its first variant
        base = a.split("[")[0]
        if base in taken:
            continue
        if base in _BLACK:
            c, m, ls = _BLACK[base]
        elif base in _KNOWN:
            k = _KNOWN.index(base)
            c, m, ls = PALETTE[k], MARKERS[k], _KNOWN_LINE[base]
        else:
            continue
        out[a] = {"color": c, "marker": m, "linestyle": ls}
        used.add((c, m))
        taken.add(base)
    k = 0
    for a in sorted(set(algorithms) - set(out)):
        while (PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)]) in used:
            k += 1
        c, m = PALETTE[k % len(PALETTE)], MARKERS[k % len(MARKERS)]
        out[a] = {"color": c, "marker": m, "linestyle": _LINESTYLES[(k // len(PALETTE)) % len(_LINESTYLES)]}
        used.add((c, m))
    return out


def _order(algorithms: list[str]) -> list[str]:
    """Known algorithms (and their variants) in their fixed order, then the others sorted."""
    return sorted(algorithms, key=algorithm_rank)


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    ok = (frame["status"] != "error") & (frame["feasible"].fillna(0).astype(int) == 1)
    return frame[ok & ~frame["name"].isin(BOUND_ONLY)]


# ---------------------------------------------------------------- the data the figures are drawn from
def latency_points(frame: pd.DataFrame, axis: str, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                   level: float = 0.95) -> pd.DataFrame:
    """Points of a ``latency_vs_<axis>`` figure, from the rows of one suite (:func:`~.report.with_ratios`).

    Parameters
    ----------
    frame : DataFrame
        Rows of one caching suite (any status; failed runs are left out).
    axis : str
        ``cap_frac``, ``top_k`` or ``N``.

    Returns
    -------
    DataFrame
        One row per (``algorithm``, ``x``): ``n`` instances, ``instances``
        (sorted tuple of instance hashes), ``mean``, ``lo``, ``hi`` (the
        bootstrap interval) of ``T / T(empty)`` averaged per instance over seeds.
        At each ``x`` every row has the same ``instances``: those on which
        every heuristic of the suite has a feasible run (a heuristic run on
        fewer than half of them is left out instead, :data:`.profiles.MIN_COVERAGE`).
        The ``optimum`` rows
        (``T(opt) / T(empty)``) exist only at the ``x`` where each of those
        instances has a proven optimum.
    """
    f = frame[frame["family"] == "caching"]
    if f.empty:
        return pd.DataFrame(columns=["algorithm", "x", "n", "instances", "mean", "lo", "hi"])
    xs = f.groupby("instance_hash")[axis].first()
    binned = pd.Series(_bin(xs.to_numpy(dtype=float), MAX_POINTS, log=False) if axis not in DISCRETE
                       else xs.to_numpy(dtype=float), index=xs.index)
    ok = _usable(f)
    heur = ok[~ok["name"].isin(_EXACT)]
    rel = (heur["latency"] / heur["empty_latency"]).rename("rel")
    long = pd.DataFrame({"instance_hash": heur["instance_hash"], "algorithm": heur["algorithm"], "rel": rel})
    mat = common_matrix(long, index="instance_hash", columns="algorithm", values="rel")
    algs = list(mat.columns)
    ref = f.groupby("instance_hash").agg(proven=("proven", "first"), gain_ref=("gain_ref", "first"),
                                         empty=("empty_latency", "first"))
    out = []
    for x in sorted(set(binned.loc[mat.index])) if len(mat) else []:
        inst = sorted(h for h in mat.index if binned[h] == x)
        block = mat.loc[inst]
        for a in algs:
            v = block[a].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed)
            out.append({"algorithm": a, "x": float(x), "n": len(inst), "instances": tuple(inst),
                        "mean": float(v.mean()), "lo": lo, "hi": hi})
        r = ref.loc[inst]
        if bool(r["proven"].all()):
            v = ((r["empty"] - r["gain_ref"]) / r["empty"]).to_numpy(dtype=float)
            lo, hi = bootstrap_ci(v, n_boot=n_boot, level=level, seed=seed)
            out.append({"algorithm": OPTIMUM, "x": float(x), "n": len(inst), "instances": tuple(inst),
                        "mean": float(v.mean()), "lo": lo, "hi": hi})
    return pd.DataFrame(out, columns=["algorithm", "x", "n", "instances", "mean", "lo", "hi"])


def scaling_points(frame: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED) -> pd.DataFrame:
    """Points of a ``runtime_scaling`` figure from one family's rows: per (``algorithm``, size bin ``x``)
    the median runtime over the bin's common instances (every algorithm has a feasible run), its
    bootstrap interval, ``n`` and ``instances``."""
    ok = _usable(frame)
    ok = ok[ok["size"].notna() & (ok["runtime_s"] > 0)]
    if ok["size"].nunique() < 2:
        return pd.DataFrame(columns=["algorithm", "x", "n", "instances", "median", "lo", "hi"])
    sizes = ok.groupby("instance_hash")["size"].first()
    binned = pd.Series(_bin(sizes.to_numpy(dtype=float), MAX_POINTS, log=True), index=sizes.index)
    mat = common_matrix(ok[["instance_hash", "algorithm", "runtime_s"]], index="instance_hash",
                        columns="algorithm", values="runtime_s", agg="median")
    out = []
    for x in sorted(set(binned.loc[mat.index])):
        inst = sorted(h for h in mat.index if binned[h] == x)
        for a in mat.columns:
            v = mat.loc[inst, a].to_numpy(dtype=float)
            lo, hi = bootstrap_ci(v, statistic=np.median, n_boot=n_boot, seed=seed)
            out.append({"algorithm": a, "x": float(x), "n": len(inst), "instances": tuple(inst),
                        "median": float(np.median(v)), "lo": lo, "hi": hi})
    return pd.DataFrame(out, columns=["algorithm", "x", "n", "instances", "median", "lo", "hi"])


# ---------------------------------------------------------------- drawing
def _figure(plt, width: str, nrows: int = 1, ncols: int = 1, **kw):
    """A figure ``width`` wide; its height is set by :func:`_finish` once the legend is known."""
    return plt.subplots(nrows, ncols, figsize=(WIDTHS[width], 3.0), layout="constrained", **kw)


def _finish(fig, axes, width: str, out: Path, stem: str, *, panel_in: float = 1.9, nrows: int = 1,
            title: str | None = None) -> list[Path]:
    """Add one legend below the axes (outside the data, the optimum first), make the figure tall
    enough for ``nrows`` panels of ``panel_in`` inches plus the legend, save it as ``stem`` and close it."""
    import matplotlib.pyplot as plt

    handles: dict[str, Any] = {}
    for ax in np.atleast_1d(axes).flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    labels = sorted(handles, key=lambda a: a != OPTIMUM)
    ncol = _ncol(width, labels) if labels else 1
    rows = math.ceil(len(labels) / ncol) + (1 if title else 0)
    fig.set_size_inches(WIDTHS[width], nrows * panel_in + 0.5 + (0.16 * rows + 0.08 if labels else 0.0))
    if labels:
        fig.legend([handles[a] for a in labels], labels, loc="outside lower center", ncols=ncol, title=title)
    paths = _save(fig, out, stem)
    plt.close(fig)
    return paths


def _ncol(width: str, labels: list[str]) -> int:
    """As many legend columns as fit the figure width (8 pt text, about 4.4 pt per character)."""
    entry = max(len(a) for a in labels) * 4.4 + 30.0
    return max(1, min(len(labels), int(WIDTHS[width] * 72 // entry)))


def _names(algorithms: list[str]) -> dict[str, str]:
    """Legend names: an algorithm's name without its parameters when no other label in the figure
    shares the name (``exact[node_limit=10000]`` -> ``exact``), the full label otherwise."""
    base = [a.split("[")[0] for a in algorithms]
    return {a: b if base.count(b) == 1 else a for a, b in zip(algorithms, base)}


def _draw_lines(ax, pts: pd.DataFrame, axis: str, sty: dict[str, dict[str, Any]]) -> None:
    algs = [a for a in _order(sorted(set(pts["algorithm"]) - {OPTIMUM}))]
    names = {**_names(algs), OPTIMUM: OPTIMUM}
    if axis in DISCRETE:
        xs = sorted(set(pts["x"]))
        pos = {x: i for i, x in enumerate(xs)}
        span = 0.7
        step = span / max(len(algs), 1)
        opt = pts[pts["algorithm"] == OPTIMUM]
        for k, (x, v) in enumerate(zip(opt["x"], opt["mean"])):
            ax.hlines(v, pos[x] - span / 2, pos[x] + span / 2, colors="black", linestyles="--", linewidth=1.0,
                      label=OPTIMUM if k == 0 else None)
        for j, a in enumerate(algs):
            p = pts[pts["algorithm"] == a]
            off = -span / 2 + step * (j + 0.5)
            px = np.array([pos[x] for x in p["x"]]) + off
            s = sty[a]
            ax.errorbar(px, p["mean"], yerr=[p["mean"] - p["lo"], p["hi"] - p["mean"]], fmt=s["marker"],
                        color=s["color"], ms=3.5, elinewidth=0.8, label=names[a], linestyle="none")
        ax.set_xticks(range(len(xs)), [f"{int(x)}" if float(x).is_integer() else f"{x:g}" for x in xs])
        ax.set_xlim(-0.6, len(xs) - 0.4)
        ax.grid(axis="x", visible=False)
        return
    bands = len(algs) <= MAX_BANDS
    xs = sorted(set(pts["x"]))
    gap = min(np.diff(xs)) if len(xs) > 1 else 1.0
    lines = ([OPTIMUM] if (pts["algorithm"] == OPTIMUM).any() else []) + algs
    for j, a in enumerate(lines):
        p = pts[pts["algorithm"] == a].sort_values("x")
        s = sty[a]
        ax.plot(p["x"], p["mean"], color=s["color"], marker=s["marker"], linestyle=s["linestyle"], ms=3.5,
                label=names[a], zorder=3 if a == OPTIMUM else 2)
        if bands:
            ax.fill_between(p["x"], p["lo"], p["hi"], color=s["color"], alpha=0.15, linewidth=0)
        elif a != OPTIMUM:
            off = 0.5 * gap * ((j - 0.5) / max(len(algs), 1) - 0.5)  # dodged so the bars do not overlap
            ax.errorbar(p["x"] + off, p["mean"], yerr=[p["mean"] - p["lo"], p["hi"] - p["mean"]], fmt="none",
                        ecolor=s["color"], elinewidth=0.6, capsize=0, alpha=0.8)


def _steps(ax, x: np.ndarray, y: np.ndarray, style: dict[str, Any], label: str, j: int, n: int,
           span: tuple[float, float], *, log: bool, marks: int = 3) -> None:
    """A right-continuous step function, with ``marks`` markers at x positions staggered by
    line ``j`` of ``n`` (markers at the data points would pile up where the steps do)."""
    ax.plot(x, y, drawstyle="steps-post", color=style["color"], linestyle=style["linestyle"],
            marker=style["marker"], markevery=[], label=label)
    t = (np.arange(marks) + (j + 0.5) / n) / marks
    lo, hi = (np.log(span[0]), np.log(span[1])) if log else span
    xm = lo + (0.1 + 0.8 * t) * (hi - lo)
    xm = np.exp(xm) if log else xm
    ym = y[np.clip(np.searchsorted(x, xm, side="right") - 1, 0, len(y) - 1)]
    ax.plot(xm, ym, marker=style["marker"], color=style["color"], linestyle="none", ms=3.5)


def _save(fig, out: Path, stem: str) -> list[Path]:
    """Write ``stem.pdf`` (no creation date, so the same data give the same bytes) and ``stem.png``
    (300 dpi) through :func:`slimcaching.fileio.write_bytes`."""
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    for p in paths:
        buf = io.BytesIO()
        fig.savefig(buf, format=p.suffix[1:], dpi=300 if p.suffix == ".png" else None,
                    metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
        write_bytes(buf.getvalue(), p)
    return paths


def _width(default: str, width: str) -> str:
    return default if width == "auto" else width


def make_figures(db: Any, out_dir: str | Path, *, width: str = "auto",
                 algorithms: Sequence[str] | None = None) -> list[Path]:
    """Write every figure the data supports; return the files written.

    ``db`` is a results database (path or store) or a frame of its rows
    (:func:`~.report.load_frame`).  ``width``: ``column`` (3.5 in), ``page``
    (7.16 in) or ``auto`` (line plots one column, multi-panel figures a page).
    ``algorithms`` keeps only those lines (names or labels with parameters);
    the references (proven optima, bounds) still come from every row.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if width not in (*WIDTHS, "auto"):
        from ..errors import InputError

        raise InputError("--width", ("", f"unknown width {width!r}; valid: {', '.join(WIDTHS)}, auto"))
    df = db if isinstance(db, pd.DataFrame) else load_frame(db)
    if "ratio" not in df.columns:
        df = with_ratios(df)
    if algorithms:
        keep = set(algorithms)
        df = df[df["algorithm"].isin(keep) | df["name"].isin(keep)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    sty = styles(sorted(set(df["algorithm"])))
    with matplotlib.rc_context(RC):
        written += _latency_figures(plt, df, out, width, sty)
        written += _ecdf_figures(plt, df, out, width, sty)
        written += _profile_figures(plt, df, out, width, sty)
        written += _scaling_figures(plt, df, out, width, sty)
    return written


def _latency_figures(plt, df, out, width, sty) -> list[Path]:
    written = []
    caching = df[df["family"] == "caching"]
    for axis, label in AXES.items():
        for suite, g in caching.groupby("suite"):
            if g[axis].nunique() < 2:
                continue
            pts = latency_points(g, axis)
            if pts.empty:
                continue
            w = _width("column", width)
            fig, ax = _figure(plt, w)
            _draw_lines(ax, pts, axis, sty)
            binned = axis not in DISCRETE and g[axis].nunique() > MAX_POINTS
            ax.set_xlabel(label + (" (binned)" if binned else ""))
            ax.set_ylabel(r"mean latency $T/T_{\mathrm{cloud}}$")
            written += _finish(fig, ax, w, out, f"latency_vs_{axis}_{suite}")
    return written


def _ecdf_figures(plt, df, out, width, sty) -> list[Path]:
    written = []
    for fam, g in _usable(df).groupby("family"):
        g = g[~g["name"].isin(_EXACT)]
        panels = []
        for suite, gs in g.groupby("suite"):
            m = ratio_matrix(gs)
            if len(m):
                panels.append((suite, m))
        if not panels:
            continue
        w = _width("page" if len(panels) > 1 else "column", width)
        ncols = min(len(panels), 3 if w == "page" else 1)
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = _figure(plt, w, nrows, ncols, squeeze=False, sharey=True)
        for ax, (suite, m) in zip(axes.flat, panels):
            names = _names(list(m.columns))
            for j, a in enumerate(_order(list(m.columns))):
                x, y = ecdf(m[a].to_numpy())
                _steps(ax, np.r_[min(0.0, x.min()), x], np.r_[0.0, y], sty[a], names[a], j, m.shape[1],
                       (0.0, 1.0), log=False)
            what = r"$R(\mathrm{alg})/R(\mathrm{opt})$" if fam == "caching" else "objective ratio"
            ax.set_xlabel(f"{what} on {suite} ($n={len(m)}$)")
            ax.set_xlim(-0.02, 1.02)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax in axes[:, 0]:
            ax.set_ylabel("fraction of instances")
        written += _finish(fig, axes, w, out, f"ratio_ecdf_{fam}", nrows=nrows)
    return written


def _profile_figures(plt, df, out, width, sty) -> list[Path]:
    written = []
    for fam, g in df[~df["name"].isin(BOUND_ONLY)].groupby("family"):
        quality = "latency" if fam == "caching" else "inverse_gain"
        for measure, stem, log in (("runtime", "profile_runtime", True),
                                   (quality, "profile_latency" if fam == "caching" else "profile_objective",
                                    False)):
            costs = cost_matrix(g, measure)
            if len(costs) < 2 or costs.shape[1] < 2:
                continue
            r = performance_ratios(costs)
            finite = r.to_numpy()[np.isfinite(r.to_numpy())]
            top = max(2.0, 1.25 * float(finite.max())) if len(finite) else 2.0
            rho = performance_profile(r, np.unique(np.r_[np.geomspace(1.0, top, 400), finite]))
            w = _width("column", width)
            fig, ax = _figure(plt, w)
            names = _names(list(rho.columns))
            for j, a in enumerate(_order(list(rho.columns))):
                _steps(ax, rho.index.to_numpy(), rho[a].to_numpy(), sty[a], names[a], j, rho.shape[1], (1.0, top),
                       log=True)
            ax.set_xscale("log", base=2)
            ax.set_xlim(1.0, top)
            ax.set_ylim(-0.02, 1.02)
            what = {"runtime": "runtime", "latency": "latency $T$", "inverse_gain": "objective"}[measure]
            ax.set_xlabel(rf"$\tau$: within a factor $\tau$ of the best {what}")
            ax.set_ylabel(rf"fraction of instances ($n={len(costs)}$)")
            written += _finish(fig, ax, w, out, f"{stem}_{fam}")
    return written


def _scaling_figures(plt, df, out, width, sty) -> list[Path]:
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    written = []
    for fam, g in df.groupby("family"):
        pts = scaling_points(g)
        if pts.empty or pts["x"].nunique() < 2:
            continue
        w = _width("column", width)
        fig, ax = _figure(plt, w)
        names = _names(sorted(set(pts["algorithm"])))
        for a in _order(sorted(set(pts["algorithm"]))):
            p = pts[pts["algorithm"] == a].sort_values("x")
            slope = fit_slope(p["x"].to_numpy(), p["median"].to_numpy())
            s = sty[a]
            ax.errorbar(p["x"], p["median"], yerr=[p["median"] - p["lo"], p["hi"] - p["median"]],
                        color=s["color"], marker=s["marker"], linestyle=s["linestyle"], ms=3.5, elinewidth=0.7,
                        label=f"{names[a]} ({slope:.2f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(r"problem size $N\sum_l E_l$" if fam == "caching" else "experts")
        ax.set_ylabel("median runtime (s)")
        written += _finish(fig, ax, w, out, f"runtime_scaling_{fam}",
                           title="algorithm (slope of log runtime on log size)")
    return written
