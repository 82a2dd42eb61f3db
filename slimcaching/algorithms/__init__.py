"""Algorithms for expert caching: one module per family, one registry.

Every algorithm has the signature::

    f(instance, *, seed=None, time_limit=None, **params) -> Result

and is listed once in :data:`~slimcaching.algorithms.registry.REGISTRY`.
Modules, lowest first (each imports only from those before it):

* :mod:`.common` -- option checks;
* :mod:`.knapsack` -- per-node value tables and their (max,+) merges;
* :mod:`.baselines`, :mod:`.greedy`, :mod:`.successive`, :mod:`.maxconv`,
  :mod:`.bruteforce` -- the paper's algorithms and the baselines;
* :mod:`.local_search` -- ours: ``polish``, ``cyclic``, ``best``;
* :mod:`.exact` -- the exact MILP of :mod:`slimcaching.formulations` with the
  ``best`` heuristic as its time-limit fallback;
* :mod:`.registry` -- names to functions, ``run`` and ``--polish``.
"""
from __future__ import annotations

from .registry import REGISTRY, algorithm_names, get_algorithm, guarantees_of, run

__all__ = ["REGISTRY", "get_algorithm", "algorithm_names", "run", "guarantees_of"]
