"""Exact formulations of expert caching (``docs/model.md`` section 1): two MILPs, solving, export.

* :func:`build_assignment_model`, :func:`build_level_model`: Pyomo models with
  the component names of ``docs/model.md``;
* :func:`exact` / :func:`solve_exact`: optimal placement with HiGHS, with a
  time limit, a bound and the evaluator's latency;
* :func:`lp_bound`: the LP relaxation value, a lower bound on ``T(opt)``;
* :func:`export_model`: LP, MPS, NL or GAMS files carrying the same optimum.
"""
from __future__ import annotations

from ..lazy import lazy_exports

# Imported on first use (PEP 562): the Pyomo import behind the builders costs
# about 0.6 CPU-s, which every command would pay for its ``--help``.
_WHERE = {"build_assignment_model": ".assignment", "export_model": ".export", "build_level_model": ".level",
          "exact": ".solve", "lp_bound": ".solve", "solve_exact": ".solve"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = ["build_assignment_model", "build_level_model", "exact", "solve_exact", "lp_bound", "export_model"]
