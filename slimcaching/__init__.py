"""slimcaching: exact optima, published algorithms and benchmarks for expert
caching in distributed Mixture-of-Experts inference.

The problem (``docs/model.md``): choose which experts each edge node caches,
under storage limits, to minimise the expected per-token latency

    T(x) = sum_u w_u sum_l sum_S p[u,l,S] max_{e in S} tau[u,l,e](x).
"""
from __future__ import annotations

from .errors import InputError
from .instances.io import read_instance, read_placement, write_instance, write_placement
from .instances.model import Instance, Placement
from .objective import IncrementalEvaluator, evaluate, latency
from .result import Guarantee, Result, Status
from .version import __version__


__all__ = [
    "InputError", "Instance", "Placement", "Result", "Status", "Guarantee",
    "read_instance", "write_instance", "read_placement", "write_placement",
    "evaluate", "latency", "IncrementalEvaluator", "solve",
]


def solve(instance: Instance, algorithm: str = "best", **kwargs) -> Result:
    """Run a registered algorithm by name (see :mod:`slimcaching.algorithms`)."""
    from .algorithms import run

    return run(instance, algorithm, **kwargs)
