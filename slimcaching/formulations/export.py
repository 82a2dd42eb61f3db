"""Export either MILP to a file any solver reads: LP, MPS, NL or GAMS.

Names are symbolic (Pyomo's ``symbolic_solver_labels``): as readable as each
format allows, e.g. ``x(edge_0_3_17)`` in LP and MPS (CPLEX LP names cannot
hold ``[``, ``]`` or ``-``), ``x[edge-0,3,17]`` in the ``.col`` / ``.row``
files next to an NL file.  The objective constant (``T(empty)`` in the level
model) is kept, as a variable ``ONE_VAR_CONSTANT`` fixed to 1 in LP and MPS,
so the exported optimum is ``T(opt)`` in seconds per token.
"""
from __future__ import annotations

import logging
import os

from ..errors import InputError
from ..fileio import write_with
from ..instances.model import Instance
from .solve import build_model

__all__ = ["FORMATS", "export_model", "write_model", "scip_optimum"]

FORMATS: dict[str, str] = {"lp": "lp", "mps": "mps", "nl": "nl", "gms": "gams"}
"""Our format name -> Pyomo writer name."""


def export_model(instance: Instance, *, formulation: str = "level", fmt: str = "mps",
                 path: str | os.PathLike, relax: bool = False) -> str:
    """Write the ``formulation`` MILP of ``instance`` to ``path`` in format ``fmt``.

    Parameters
    ----------
    instance : Instance
    formulation : {"level", "assignment"}
    fmt : {"lp", "mps", "nl", "gms"}
    path : path-like
        Output file (its extension is not checked).
    relax : bool, default False
        Write the LP relaxation instead.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    InputError
        Unknown formulation or format (the valid values are listed).
    OutputError
        ``path`` cannot be written (see :mod:`slimcaching.fileio`).
    """
    if fmt not in FORMATS:
        raise InputError("--format", ("", f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}"))
    model = build_model(instance, formulation, relax=relax)
    path = os.fspath(path)
    write_model(model, path, fmt)
    return path


def write_model(model, path: str, fmt: str):
    """Write a built model with the writer settings of :func:`export_model`; return Pyomo's symbol map.

    The symbol map (``pyomo.core.expr.symbol_map.SymbolMap``) holds the name
    the writer gave each component (``bySymbol``: name -> component), so a
    solution that names variables the way the file does can be mapped back
    to the model (:mod:`slimcaching.formulations.import_solution`).

    Raises
    ------
    InputError
        (NL) the model has no variables.
    OutputError
        ``path`` cannot be written (see :mod:`slimcaching.fileio`).
    """
    log = logging.getLogger("pyomo.core")
    level = log.level
    log.setLevel(logging.ERROR)  # Pyomo warns when the extension is not the writer's usual one
    written = []
    try:
        write_with(path, lambda name: written.append(model.write(name, format=FORMATS[fmt],
                                                                 io_options={"symbolic_solver_labels": True})))
    except ValueError as exc:
        if "No variables" not in str(exc):
            raise
        # Pyomo's NL writer refuses a model without variables (no expert fits a node faster than the cloud)
        raise InputError(path, ("", "the model has no variables (no expert can be cached anywhere it would be "
                                    "faster than the cloud), which the NL format cannot hold; the optimum is "
                                    "the empty placement")) from None
    finally:
        log.setLevel(level)
    _, symbol_id = written[0]
    return model.solutions.symbol_map[symbol_id]


def scip_optimum(path: str | os.PathLike, *, time_limit: float | None = None) -> float:
    """Solve an exported LP or MPS file with SCIP (optional cross-check; needs ``pyscipopt``).

    An independent solver reading the file we wrote: its optimum must equal
    ``T(opt)`` from :func:`~slimcaching.formulations.solve.exact`.  ``pyscipopt``
    is not a dependency of slimcaching (``pip install pyscipopt``).

    Returns
    -------
    float
        SCIP's optimal objective value (gap closed to ``1e-9``).

    Raises
    ------
    ImportError
        ``pyscipopt`` is not installed.
    RuntimeError
        SCIP did not prove optimality (its status is in the message).
    """
    try:
        import pyscipopt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the SCIP cross-check needs pyscipopt: pip install pyscipopt") from exc
    model = pyscipopt.Model()
    model.hideOutput()
    model.readProblem(os.fspath(path))
    model.setParam("limits/gap", 1e-9)
    model.setParam("limits/absgap", 0.0)
    if time_limit is not None:
        model.setParam("limits/time", float(time_limit))
    model.optimize()
    if model.getStatus() != "optimal":
        raise RuntimeError(f"SCIP did not prove optimality for {os.fspath(path)!r}: status {model.getStatus()}")
    return float(model.getObjVal())
