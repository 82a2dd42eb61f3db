"""Benchmarks, tables, guarantee checks and figures: what a paper is written from.

Modules
-------
families    problem-family adapters (expert caching here, MoE² in ``slimcaching.moe2.family``)
store       the SQLite results store (one row per run, keyed by content, WAL)
runner      resumable sweeps, locally, in a process pool or on dask
report      ratio, proof and formulation tables (markdown, LaTeX, CSV)
guarantees  claimed approximation guarantees against stored runs
worstcase   hill-climbing search for instances with a small ratio
profiles    performance profiles, ratio ECDFs, bootstrap intervals on a common instance set
figures     latency, ratio-ECDF, performance-profile and runtime-scaling figures (PDF and PNG)
sweeps      instance grids where one parameter varies
demo        ``slimcaching demo``

The performance benchmarks live outside the package, in ``benchmarks/``.

Submodules are imported on use, so importing this package stays cheap.
"""
from __future__ import annotations

__all__: list[str] = []
