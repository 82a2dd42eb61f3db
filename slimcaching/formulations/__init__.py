"""Exact formulations of expert caching (``docs/model.md`` section 1): two MILPs, solving, export.

* :func:`build_assignment_model`, :func:`build_level_model`: Pyomo models with
  the component names of ``docs/model.md``;
* :func:`exact` / :func:`solve_exact`: optimal placement with HiGHS, with a
  time limit, a bound and the evaluator's latency;
* :func:`lp_bound`: the LP relaxation value, a lower bound on ``T(opt)``;
* :func:`export_model`: LP, MPS, NL or GAMS files carrying the same optimum.
"""
from __future__ import annotations

from .assignment import build_assignment_model
from .export import export_model
from .level import build_level_model
from .solve import exact, lp_bound, solve_exact

__all__ = ["build_assignment_model", "build_level_model", "exact", "solve_exact", "lp_bound", "export_model"]
