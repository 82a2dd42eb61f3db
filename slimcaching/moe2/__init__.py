"""MoE² edge LLM expert selection (``docs/model.md`` section 2): the second problem family, in one folder.

Modules, lowest first (each imports only from those before it, and from the
shared core: :mod:`slimcaching.errors`, :mod:`slimcaching.result`,
:mod:`slimcaching.validation`, :mod:`slimcaching.fileio`,
:mod:`slimcaching.solvers`):

* :mod:`.instance` -- data model, validation, I/O, the family's one evaluator;
* :mod:`.generator` -- seeded instances of heterogeneous edge LLMs;
* :mod:`.common` -- the result type, the counting oracle, start and finish of every method;
* :mod:`.milp` -- the subset-choice MILP (HiGHS);
* :mod:`.algorithms` -- DMO, exhaustive search, the MILP, baselines, and the registry;
* :mod:`.family` -- the adapter the analysis runner uses;
* :mod:`.cli` -- ``slimcaching moe2 generate|solve|evaluate``.

Nothing here imports the caching family's algorithms or formulations.
"""
from __future__ import annotations

from .algorithms import MOE2_ALGORITHMS, get_moe2_algorithm
from .common import CountingOracle, Moe2Result
from .generator import generate_moe2
from .instance import Moe2Instance, evaluate_moe2, moe2_from_dict, read_moe2_instance, write_moe2_instance

__all__ = ["Moe2Instance", "Moe2Result", "CountingOracle", "MOE2_ALGORITHMS", "get_moe2_algorithm",
           "generate_moe2", "evaluate_moe2", "moe2_from_dict", "read_moe2_instance", "write_moe2_instance"]
