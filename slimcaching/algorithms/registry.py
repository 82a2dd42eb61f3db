"""The one registry of algorithms for expert caching.

Every algorithm has the signature::

    f(instance, *, seed=None, time_limit=None, **params) -> Result

and is listed once in :data:`REGISTRY` (name -> ``"module:function"``, imported
lazily).  The command line, the benchmark runner and the generic tests iterate
this registry, so a new algorithm is one module and one line here.

A function may carry ``guarantees``: a tuple of :class:`~slimcaching.result.Guarantee`
(ratio, regime, reference) read by the guarantee checker.
"""
from __future__ import annotations

import importlib
import time
from typing import Callable

from ..errors import InputError
from ..instances.model import Instance
from ..result import Guarantee, Result

__all__ = ["REGISTRY", "get_algorithm", "algorithm_names", "run", "guarantees_of"]

REGISTRY: dict[str, str] = {
    # baselines a paper compares against
    "cloud": "slimcaching.algorithms.baselines:cloud",
    "random": "slimcaching.algorithms.baselines:random_placement",
    "popularity": "slimcaching.algorithms.baselines:popularity",
    "independent": "slimcaching.algorithms.baselines:independent",
    # the paper's algorithms
    "greedy": "slimcaching.algorithms.greedy:greedy",
    "successive": "slimcaching.algorithms.successive:successive",
    "maxconv": "slimcaching.algorithms.maxconv:maxconv",
    # ours
    "cyclic": "slimcaching.algorithms.local_search:cyclic",
    "polish": "slimcaching.algorithms.local_search:polish",
    "best": "slimcaching.algorithms.local_search:best",
    # exact references
    "exact": "slimcaching.algorithms.exact:exact",
    "brute-force": "slimcaching.algorithms.bruteforce:brute_force",
    # decomposition (proven bound) and the MILP-based flagship
    "decompose": "slimcaching.algorithms.decompose:decompose",
    "lns": "slimcaching.algorithms.lns:lns",
}


def algorithm_names() -> list[str]:
    return list(REGISTRY)


def get_algorithm(name: str) -> Callable[..., Result]:
    """The function registered as ``name``; unknown names list the valid ones."""
    if name not in REGISTRY:
        raise InputError("--algorithm", ("", f"unknown algorithm {name!r}; valid: {', '.join(REGISTRY)}"))
    mod, fn = REGISTRY[name].split(":")
    return getattr(importlib.import_module(mod), fn)


def guarantees_of(name: str) -> tuple[Guarantee, ...]:
    return tuple(getattr(get_algorithm(name), "guarantees", ()))


def run(instance: Instance, algorithm: str, *, seed: int | None = None, time_limit: float | None = None,
        polish: bool = False, **params) -> Result:
    """Run a registered algorithm; with ``polish=True`` follow it by local search.

    The polished result keeps the first algorithm's name with ``+polish`` and
    the total runtime.
    """
    fn = get_algorithm(algorithm)
    t0 = time.perf_counter()
    res = fn(instance, seed=seed, time_limit=time_limit, **params)
    if polish:
        from .local_search import polish as _polish

        left = None if time_limit is None else max(0.0, time_limit - (time.perf_counter() - t0))
        res2 = _polish(instance, start=res.placement, seed=seed, time_limit=left)
        res2.algorithm = f"{res.algorithm}+polish"
        res2.params = {**res.params, "polish": True}
        res2.info = {"start": res.info, "polish": res2.info, "start_latency": res.latency}
        res2.runtime_s = time.perf_counter() - t0
        if res.bound is not None:
            res2.bound = res.bound
            res2.gap = max(0.0, (res2.latency - res.bound) / res2.latency) if res2.latency > 0 else None
        return res2
    return res
