"""The names ``report`` and ``figures`` accept: table kinds, grouping and value columns, figure widths.

Plain data, with no pandas import, so that the command line can list the
choices in its help without loading the table machinery
(:mod:`slimcaching.analysis.report`, :mod:`slimcaching.analysis.figures`).
"""
from __future__ import annotations

__all__ = ["GROUP_COLUMNS", "RATIO_COLUMNS", "COLUMN_SETS", "TABLES", "WIDTHS"]

#: Columns a ratio table may be grouped by.
GROUP_COLUMNS = ("family", "suite", "algorithm", "name", "params", "top_k", "L", "N", "U", "cap_frac",
                 "seed", "instance_name")

#: Value columns, in order, of :func:`~slimcaching.analysis.report.ratio_table` (``median_oracle_calls`` follows when counted).
RATIO_COLUMNS = ("runs", "instances", "proven", "mean_ratio", "min_ratio", "p5_ratio", "mean_latency_ratio",
                 "certified", "cert_mean_ratio", "cert_min_ratio", "cert_mean_latency_ratio",
                 "median_runtime_s", "failed")

#: Named column choices of ``report --columns`` (the group columns always come first).
COLUMN_SETS: dict[str, tuple[str, ...]] = {
    "all": RATIO_COLUMNS,
    "paper": ("proven", "mean_ratio", "min_ratio", "certified", "cert_mean_ratio", "cert_min_ratio",
              "median_runtime_s"),
    "proven": ("proven", "mean_ratio", "min_ratio", "p5_ratio", "mean_latency_ratio", "median_runtime_s"),
    "certified": ("certified", "cert_mean_ratio", "cert_min_ratio", "cert_mean_latency_ratio"),
}

#: Tables of ``slimcaching report --table``.
TABLES = ("all", "ratios", "formulations", "proofs", "certified")

#: Figure widths in inches: one IEEE column and the full text width.
WIDTHS = {"column": 3.5, "page": 7.16}
