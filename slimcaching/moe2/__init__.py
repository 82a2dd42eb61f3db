"""MoE² edge LLM expert selection (``docs/model.md`` section 2): the second problem family, in one folder.

Modules, lowest first (each imports only from those before it, and from the
shared core: :mod:`slimcaching.errors`, :mod:`slimcaching.result`,
:mod:`slimcaching.validation`, :mod:`slimcaching.fileio`,
:mod:`slimcaching.solvers`):

* :mod:`.bits` -- subsets as bit masks;
* :mod:`.quality`, :mod:`.gating` -- quality oracles: table, noisy-OR, callable, learned softmax gate;
* :mod:`.instance` -- data model, validation, I/O, the family's one evaluator;
* :mod:`.generator` -- seeded instances of heterogeneous edge LLMs (noisy-OR or learned gate);
* :mod:`.common` -- the result type, the counting oracle, start and finish of every method;
* :mod:`.milp` -- the subset-choice MILP (HiGHS);
* :mod:`.dmo` -- discrete monotonic optimisation: the mckp, joint and polyblock masters;
* :mod:`.algorithms` -- DMO, exhaustive search, the MILP, baselines, and the registry;
* :mod:`.family` -- the adapter the analysis runner uses;
* :mod:`.cli` -- ``slimcaching moe2 generate|solve|evaluate``.

Nothing here imports the caching family's algorithms or formulations.
"""
from __future__ import annotations

from ..lazy import lazy_exports

# The public names, and the module each one lives in.  They are imported on
# first use (PEP 562), so that ``slimcaching moe2 --help`` or any caching
# command does not pay for the MILP's Pyomo import (about 0.6 CPU-s).
_WHERE = {"MOE2_ALGORITHMS": ".algorithms", "get_moe2_algorithm": ".algorithms",
          "CountingOracle": ".common", "Moe2Result": ".common",
          "generate_moe2": ".generator", "generate_moe2_gated": ".generator",
          "Moe2Instance": ".instance", "evaluate_moe2": ".instance", "moe2_from_dict": ".instance",
          "read_moe2_instance": ".instance", "write_moe2_instance": ".instance"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

__all__ = ["Moe2Instance", "Moe2Result", "CountingOracle", "MOE2_ALGORITHMS", "get_moe2_algorithm",
           "generate_moe2", "generate_moe2_gated", "evaluate_moe2", "moe2_from_dict", "read_moe2_instance", "write_moe2_instance"]
