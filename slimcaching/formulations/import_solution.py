"""Read a solution that another solver wrote for an exported model, and check it with the evaluator.

The round trip is ``export`` (:func:`~slimcaching.formulations.export.export_model`)
-> any MILP solver -> :func:`import_solution` -> a placement whose latency is
the evaluator's.  Seven solution layouts are read (``SOLUTION_FORMATS``):

========  ==============================================================  ====================
name      layout                                                          lists
========  ==============================================================  ====================
highs     ``Highs::writeSolution`` raw (style 0) or sparse (style 4):      every column, or the
          ``Model status`` / ``# Primal solution values`` /               nonzeros (sparse)
          ``Objective V`` / ``# Columns N`` / ``name value [index]``
scip      ``write solution`` / ``writeBestSol``: ``solution status:``,     the nonzeros
          ``objective value:``, then ``name value (obj:c)``
gurobi    SOL: ``# Objective value = V`` comment, ``name value`` lines     every variable
cplex     SOL (XML): ``<CPLEXSolution>``, ``<header objectiveValue=...     every variable
          solutionStatusString=...>``, ``<variable name index value/>``
cbc       ``solution FILE``: ``STATUS - objective value V``, then         the nonzeros
          ``index name value reduced-cost``
nl        AMPL text ``.sol`` of the NL export (message, ``Options``,       every variable, by
          counts, duals, primals, ``objno``), names from the ``.col``      position
          file written next to the ``.nl``
plain     ``name value`` lines, ``#`` comments (an ``# Objective value =   what it lists; the
          V`` comment is read)                                            rest is 0
========  ==============================================================  ====================

Names are mapped back to the model with the writers' own symbol maps
(:func:`~slimcaching.formulations.export.write_model` on the same model in a
temporary directory, so LP/MPS names such as ``x(edge_0_3_17)`` and GAMS names
such as ``x_edge_0_3_17_`` resolve exactly as the writer produced them) and,
for NL, with the labeler Pyomo's NL writer uses for the ``.col`` file
(``NameLabeler``: ``x[edge-0,3,17]``).  Nothing is parsed out of a name.

The placement is ``x > 0.5`` of the ``x`` values (each within ``1e-5`` of 0 or
1); its latency is the evaluator's ``T(x)``.  For any point of either model
with binary ``x``, the objective is at least ``T(x)`` (the continuous
variables can do no better than the placement's own service, see the
builders' docstrings), so the file's objective (or, when the file states none
but lists every variable, the model's objective at the file's values) is
compared with ``T(x)``:

* ``T(x)`` above the objective by more than ``1e-6`` relative
  (:data:`~slimcaching.formulations.solve.CHECK_RTOL`) is an error with both
  numbers: the file claims a latency its placement does not have, so it was
  not written for this instance and formulation, or its point violates the
  model;
* the objective above ``T(x)`` is reported (``message``), not an error: the
  solver's continuous variables did not make the best use of its ``x``,
  which a solver may leave within its own MIP gap even when it reports an
  optimum.

The imported result claims no optimality (status ``heuristic``, ``bound``
``None``): a status or bound in the file is the other solver's word, kept in
``info`` (``solver_status``, ``solver_bound``) and not checked here.
"""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.label import NameLabeler

from ..errors import InputError
from ..instances.model import Instance
from ..objective import evaluate
from ..result import Result, Status, make_result
from .export import write_model
from .solve import CHECK_RTOL, build_model, extract_placement
from .solution_files import (CONSTANT_TOL, INTEGRALITY_TOL, SOLUTION_FORMATS, SolutionFile, detect_format,
                             read_solution)

__all__ = ["SOLUTION_FORMATS", "INTEGRALITY_TOL", "SolutionFile", "Imported", "read_solution",
           "detect_format", "import_solution"]


# ----------------------------------------------------------------- mapping
_NOT_MODEL = object()   # a writer column that is not a model variable (the objective constant)


class _Labels:
    """Name in a solution file -> model variable, from the writers' own symbol maps.

    LP names are tried first, then MPS and GAMS (each written once, on demand,
    into a temporary directory); NL ``.col`` names come from the labeler of
    Pyomo's NL writer.  A name that two labelings give to different variables
    is ambiguous and rejected.
    """

    def __init__(self, model: pyo.ConcreteModel, nl: bool):
        self.model = model
        self.vars = {id(v): v for v in model.component_data_objects(pyo.Var, descend_into=True)}
        self.pending = [] if nl else ["lp", "mps", "gms"]
        self.map: dict[str, object] = {}
        if nl:
            labeler = NameLabeler()
            self.map = {labeler(v): v for v in self.vars.values()}

    def _add(self, fmt: str) -> None:
        with tempfile.TemporaryDirectory(prefix="slimcaching-labels-") as tmp:
            symbols = write_model(self.model, os.path.join(tmp, f"model.{fmt}"), fmt)
        for name, obj in symbols.bySymbol.items():
            if not getattr(obj, "is_variable_type", lambda: False)():
                continue  # rows and the objective
            target = obj if self.vars.get(id(obj)) is obj else _NOT_MODEL
            old = self.map.setdefault(name, target)
            if old is not target:
                self.map[name] = None   # ambiguous

    def lookup(self, name: str):
        while name not in self.map and self.pending:
            self._add(self.pending.pop(0))
        return self.map.get(name, KeyError)


# ----------------------------------------------------------------- importing
@dataclass
class Imported:
    """An imported solution: the evaluator's result and what the file said.

    Attributes
    ----------
    result : Result
        Status ``heuristic`` (no optimality is claimed), latency and
        feasibility from the evaluator, ``bound`` ``None``.
    solution_objective : float or None
        The objective the file states, or (``objective_source ==
        "computed"``) the model's objective at the file's values when the
        file states none but lists every variable; ``None`` when neither.
    objective_source : {"file", "computed"} or None
    """

    result: Result
    solution_objective: float | None
    objective_source: str | None

    def to_placement_dict(self, instance: Instance) -> dict:
        """The ``slimcaching-placement/1`` object, ``solution_objective`` next to ``latency``."""
        doc = self.result.to_placement_dict(instance)
        out: dict = {}
        for k, v in doc.items():
            out[k] = v
            if k == "latency":
                out["solution_objective"] = self.solution_objective
        out["feasible"] = self.result.feasible
        return out


def import_solution(instance: Instance, path: str | os.PathLike, *, formulation: str = "level",
                    fmt: str = "auto", col: str | os.PathLike | None = None,
                    row: str | os.PathLike | None = None) -> Imported:
    """Turn a solver's solution of the exported ``formulation`` model of ``instance`` into a checked placement.

    Parameters
    ----------
    instance : Instance
        The instance the model was exported from.
    path : path-like
        The solution file.
    formulation : {"level", "assignment"}
        The formulation that was exported.
    fmt : {"auto", "highs", "scip", "gurobi", "cplex", "nl", "plain"}
    col, row : path-like, optional
        For ``nl``: see :func:`read_solution`.

    Returns
    -------
    Imported

    Raises
    ------
    InputError
        A malformed file; a name that is not a variable of the model; a
        variable listed twice; an ``x`` value that is not within
        :data:`INTEGRALITY_TOL` of 0 or 1; a missing ``x`` in a layout that
        lists every variable; or ``T(x)`` above the solution's objective by
        more than :data:`~slimcaching.formulations.solve.CHECK_RTOL` relative
        (both numbers are in the message).

    Notes
    -----
    For a point ``(x, rest)`` of either model with binary ``x``, the objective
    is at least ``T(x)``: in the assignment model ``z[u,l,S] >= tau(y) >=
    max_{e in S} tau[u,l,e](x)`` because ``y`` can only use cached places; in
    the level model ``b[u,l,S,j] <= 1`` only if every member is available at
    ``theta_j``, so the subtracted saving is at most the placement's.  An
    objective below ``T(x)`` therefore cannot come from this model and
    instance, which is why that direction is an error and the other is not.
    """
    t0 = time.perf_counter()
    path = os.fspath(path)
    sol = read_solution(path, fmt, col=col, row=row)
    model = build_model(instance, formulation)
    labels = _Labels(model, nl=sol.format == "nl")
    x_pos = {id(v): i for i, v in enumerate(model.x.values())}
    x_vals = np.zeros(len(x_pos))
    x_seen = np.zeros(len(x_pos), dtype=bool)
    for v in labels.vars.values():
        v.set_value(0.0, skip_validation=True)
    given: dict[int, str] = {}
    for name, value, where in sol.entries:
        var = labels.lookup(name)
        if var is KeyError:
            raise InputError(path, (where, f"{name!r} is not a variable of the {formulation} model of instance "
                                           f"{instance.name!r} (was the model exported from this instance with "
                                           f"--formulation {formulation}?)"))
        if var is None:
            raise InputError(path, (where, f"{name!r} names different variables in the LP, MPS and GAMS "
                                           f"exports; use the names of one export"))
        if var is _NOT_MODEL:
            if abs(value - 1.0) > CONSTANT_TOL:
                raise InputError(path, (where, f"{name!r} is the objective constant's column, fixed to 1, "
                                               f"but the file gives {value!r}"))
            continue
        if id(var) in given:
            raise InputError(path, (where, f"{name!r} is listed twice (first at {given[id(var)]})"))
        given[id(var)] = where
        var.set_value(value, skip_validation=True)
        i = x_pos.get(id(var))
        if i is not None:
            if not (-INTEGRALITY_TOL <= value <= 1 + INTEGRALITY_TOL) or abs(value - round(value)) > INTEGRALITY_TOL:
                raise InputError(path, (where, f"{name!r} = {value!r} is not binary (within {INTEGRALITY_TOL:g}): "
                                               f"not a solution of the MILP (an LP relaxation?)"))
            x_vals[i] = value
            x_seen[i] = True
    if sol.complete and not x_seen.all():
        missing = next(v for v in model.x.values() if not x_seen[x_pos[id(v)]])
        raise InputError(path, ("", f"{int((~x_seen).sum())} placement variable(s) missing, e.g. "
                                    f"{missing.name!r}; a {sol.format} solution lists every variable, so the "
                                    f"file is not a solution of the {formulation} model of {instance.name!r}"))
    objective, source = sol.objective, ("file" if sol.objective is not None else None)
    if objective is None and len(given) == len(labels.vars):
        objective, source = float(pyo.value(model.latency)), "computed"
    placement = extract_placement(instance, x_vals)
    info = {"solution_file": path, "solution_format": sol.format, "solver_status": sol.status,
            "solver_claims_optimal": sol.claims_optimal, "solver_bound": sol.bound,
            "objective_source": source, "n_values": len(given),
            "max_integrality_violation": float(np.max(np.abs(x_vals - np.round(x_vals)), initial=0.0))}
    res = make_result(instance, placement, algorithm="import-solution", status=Status.HEURISTIC,
                      runtime_s=time.perf_counter() - t0,
                      params={"formulation": formulation, "format": sol.format}, info=info)
    message = []
    if objective is not None:
        t = res.latency
        tol = CHECK_RTOL * max(abs(t), abs(objective))
        rel = abs(t - objective) / max(abs(t), abs(objective), 1e-300)
        res.info["objective_rel_diff"] = rel
        if t > objective + tol:
            raise InputError(path, ("", f"solution objective {objective!r} ({source}) but the evaluator gives "
                                        f"T = {t!r} for its placement (relative difference {rel:.3g} > "
                                        f"{CHECK_RTOL:g}): not a solution of the {formulation} model of "
                                        f"{instance.name!r}, or one that violates it"))
        if objective > t + tol:
            message.append(f"the solution's objective {objective!r} is above its placement's latency {t!r} "
                           f"(relative {rel:.3g}): the solver's continuous variables do not make the best use "
                           f"of its placement" + (", although it reports an optimum (within its own gap)"
                                                  if sol.claims_optimal else ""))
    else:
        message.append("the file states no objective and does not list every variable: only the evaluator's "
                       "latency is reported")
    if not res.feasible:
        over = evaluate(instance, placement).over_capacity
        message.append(f"over capacity on node(s) {', '.join(over)}")
        res.info["over_capacity"] = over
    res.message = "; ".join(message)
    return Imported(result=res, solution_objective=objective, objective_source=source)
