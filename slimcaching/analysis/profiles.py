"""Cross-instance views of a benchmark: performance profiles, ratio ECDFs, bootstrap intervals.

Everything here is computed on a *common instance set*: an instance enters a
comparison only when every compared algorithm has a row for it, so each
curve or point averages exactly the same instances (a failed run stays in,
as a failure; an instance one algorithm never ran on is left out for all).
The plotting lives in :mod:`slimcaching.analysis.figures`.

Performance profiles (Dolan and Moré [1]).  For problems ``p`` in ``P`` and
solvers ``s`` with a cost ``t[p, s] > 0`` (runtime, or latency; lower is
better; ``inf`` for a failure), the performance ratio is
``r[p, s] = t[p, s] / min_s' t[p, s']`` and the profile of ``s`` is

    rho_s(tau) = |{p in P : r[p, s] <= tau}| / |P|,   tau >= 1,

so ``rho_s(1)`` is the share of problems on which ``s`` is (one of) the best
and ``rho_s(tau)`` for large ``tau`` the share it solves at all.

References
----------
.. [1] E. D. Dolan, J. J. Moré, "Benchmarking optimization software with
   performance profiles", Mathematical Programming 91(2):201-213, 2002.
.. [2] B. Efron, R. J. Tibshirani, "An Introduction to the Bootstrap",
   Chapman & Hall, 1993 (percentile intervals, chapter 13).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["RUNTIME_FLOOR_S", "MIN_COVERAGE", "bootstrap_ci", "common_matrix", "performance_ratios", "performance_profile",
           "ecdf", "cost_matrix", "ratio_matrix"]

#: Runtimes below this (seconds) are raised to it before taking ratios: timer resolution and
#: process noise make smaller differences meaningless.
RUNTIME_FLOOR_S = 1e-4


def bootstrap_ci(values: np.ndarray, *, statistic: Callable[..., np.ndarray] = np.mean, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval [2] of ``statistic`` over the values (resampling them with replacement).

    Parameters
    ----------
    values : ndarray, shape (n,)
    statistic : callable
        Applied along ``axis=1`` of an ``(n_boot, n)`` array of resamples.
    n_boot : int
    level : float
        Coverage, 0.95 for a 95 % interval.
    seed : int
        Seed of the resampling; with the same ``n`` and seed every call draws
        the same indices, so intervals of several algorithms on the same
        instances are paired.

    Returns
    -------
    (float, float)
        ``(nan, nan)`` for no value; ``(v, v)`` for a single value ``v``.
    """
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float(v[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(v), size=(n_boot, len(v)))
    stats = statistic(v[idx], axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [a, 1.0 - a])
    return float(lo), float(hi)


#: An algorithm that covers less than this share of the instances is left out of a comparison
#: instead of shrinking the common instance set to the instances it ran on.
MIN_COVERAGE = 0.5


def common_matrix(long: pd.DataFrame, *, index: str, columns: str, values: str,
                  agg: str = "mean", min_coverage: float = MIN_COVERAGE) -> pd.DataFrame:
    """Pivot ``long`` rows to an ``index x columns`` matrix and keep the rows complete in every column.

    Several rows per cell (seeds) are aggregated with ``agg``; a cell may be
    ``inf`` (a failure) but not missing.  Columns with values on fewer than
    ``min_coverage`` of the rows (an algorithm run on one suite only) are
    dropped first, then every row with a missing cell.
    """
    if long.empty:
        return pd.DataFrame()
    m = long.pivot_table(index=index, columns=columns, values=values, aggfunc=agg, dropna=False)
    m = m.loc[:, m.notna().mean(axis=0) >= min_coverage]
    return m.dropna(axis=0, how="any").sort_index()


def performance_ratios(costs: pd.DataFrame, *, floor: float = 0.0) -> pd.DataFrame:
    """Dolan-Moré ratios ``r[p, s] = t[p, s] / min_s t[p, s]`` of a problems x solvers cost matrix.

    Costs below ``floor`` are raised to it; ``inf`` marks a failure and stays
    ``inf``.  A problem no solver solved has every ratio ``inf``.
    """
    t = costs.to_numpy(dtype=float)
    t = np.where(np.isfinite(t), np.maximum(t, floor), np.inf)
    best = t.min(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(np.isfinite(best) & (best > 0), t / best, np.where(np.isfinite(t) & (t == best), 1.0, np.inf))
    return pd.DataFrame(r, index=costs.index, columns=costs.columns)


def performance_profile(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """``rho_s(tau)`` for each solver (column of ``ratios``) at each ``tau`` (rows of the result)."""
    r = ratios.to_numpy(dtype=float)
    taus = np.asarray(taus, dtype=float)
    rho = (r[None, :, :] <= taus[:, None, None]).mean(axis=1) if len(r) else np.zeros((len(taus), r.shape[1]))
    return pd.DataFrame(rho, index=pd.Index(taus, name="tau"), columns=ratios.columns)


def ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: sorted values ``x`` and ``F(x) = i / n`` (a right-continuous step function)."""
    x = np.sort(np.asarray(values, dtype=float))
    return x, np.arange(1, len(x) + 1) / max(len(x), 1)


def _ok(frame: pd.DataFrame) -> pd.Series:
    return (frame["status"] != "error") & (frame["feasible"].fillna(0).astype(int) == 1)


def cost_matrix(frame: pd.DataFrame, measure: str, *, floor: float | None = None) -> pd.DataFrame:
    """Instances x algorithms cost matrix of one family's rows (of :func:`~.report.with_ratios`).

    ``measure``: ``"runtime"`` (``runtime_s``, floored at :data:`RUNTIME_FLOOR_S`),
    ``"latency"`` (caching, ``T(x)``) or ``"inverse_gain"`` (``1 / gain``, for a
    maximised objective such as MoE²'s).  A failed or infeasible run costs
    ``inf``; seeds are averaged; instances without a row of every algorithm are
    dropped (common instance set).
    """
    col = {"runtime": "runtime_s", "latency": "latency", "inverse_gain": "gain"}[measure]
    v = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    if measure == "inverse_gain":
        with np.errstate(divide="ignore"):
            v = np.where(v > 0, 1.0 / v, np.inf)
    if measure == "runtime":
        v = np.maximum(v, RUNTIME_FLOOR_S if floor is None else floor)
    v = np.where(_ok(frame).to_numpy() & np.isfinite(v), v, np.inf)
    long = pd.DataFrame({"instance_hash": frame["instance_hash"].to_numpy(),
                         "algorithm": frame["algorithm"].to_numpy(), "cost": v})
    return common_matrix(long, index="instance_hash", columns="algorithm", values="cost")


def ratio_matrix(frame: pd.DataFrame) -> pd.DataFrame:
    """Instances x algorithms matrix of exact empirical ratios, on the instances with a proven optimum.

    Only instances where every algorithm has a ratio are kept (a failed run
    has none and drops the instance for all: the ECDFs of :mod:`.figures`
    compare the same instances); seeds are averaged.
    """
    f = frame[frame["proven"]]
    return common_matrix(f[["instance_hash", "algorithm", "ratio"]], index="instance_hash", columns="algorithm",
                         values="ratio")
