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

import math
import os
import re
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pyomo.environ as pyo
from pyomo.core.base.label import NameLabeler

from ..errors import InputError
from ..instances.model import Instance
from ..objective import evaluate
from ..result import Result, Status, make_result
from .export import write_model
from .solve import CHECK_RTOL, build_model, extract_placement

__all__ = ["SOLUTION_FORMATS", "INTEGRALITY_TOL", "SolutionFile", "Imported", "read_solution",
           "detect_format", "import_solution"]

SOLUTION_FORMATS = ("highs", "scip", "gurobi", "cplex", "cbc", "nl", "plain")
"""Solution layouts :func:`read_solution` reads (``"auto"`` detects one of them)."""

INTEGRALITY_TOL = 1e-5
"""How far an ``x`` value may be from 0 or 1 (the default integrality tolerance of Gurobi and CPLEX)."""

CONSTANT_TOL = 1e-6
"""How far the writer's objective-constant column (``ONE_VAR_CONSTANT``, fixed to 1) may be from 1."""

#: Solver statuses that claim a proven optimum (recorded, never passed on).
_OPTIMAL = {"highs": {"Optimal"}, "scip": {"optimal solution found"}, "cbc": {"Optimal"},
            "cplex": {"integer optimal solution", "integer optimal, tolerance", "optimal"}}


@dataclass
class SolutionFile:
    """What a solution file says, before it is matched to a model.

    Attributes
    ----------
    path : str
    format : str
        One of :data:`SOLUTION_FORMATS`.
    entries : list of (name, value, where)
        Every value listed, with the variable name the file uses and where it
        stands (``"line 12"``, ``"<variable> #3"``) for error messages.
    objective : float or None
        The objective value the file states (``None`` when it states none).
    status : str or None
        The solver's status text, as written.
    claims_optimal : bool
        The status says the solution is proven optimal.
    complete : bool
        The writer lists every variable (a missing ``x`` is then an error,
        not a zero).
    bound : float or None
        A dual bound the file states (HiGHS 1.16 writes ``Objective_bound``; 1.5.3 does not).
    """

    path: str
    format: str
    entries: list[tuple[str, float, str]] = field(default_factory=list)
    objective: float | None = None
    status: str | None = None
    claims_optimal: bool = False
    complete: bool = True
    bound: float | None = None


# ----------------------------------------------------------------- reading
def _number(text: str, file: str, where: str, what: str = "value") -> float:
    """A finite float, or an :class:`InputError` naming file, place and the text found."""
    try:
        v = float(text)
    except ValueError:
        raise InputError(file, (where, f"{what} must be a number, got {text!r}")) from None
    if not math.isfinite(v):
        raise InputError(file, (where, f"{what} must be finite, got {text!r}"))
    return v


def _lines(path: str) -> Iterator[tuple[int, str]]:
    """``(line number, stripped line)`` of a text file; unreadable files are one-line errors."""
    try:
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                yield i, line.strip()
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except IsADirectoryError:
        raise InputError(path, ("", "is a directory, expected a solution file")) from None
    except UnicodeDecodeError:
        raise InputError(path, ("", "not a text file (cannot decode it as UTF-8)")) from None
    except OSError as exc:
        raise InputError(path, ("", f"cannot read file: {exc.strerror or exc}")) from None


def _head(path: str, n: int = 40) -> list[str]:
    out = []
    for _, line in _lines(path):
        if line:
            out.append(line)
            if len(out) >= n:
                break
    return out


def detect_format(path: str) -> str:
    """The solution layout of ``path``, from its first lines (``plain`` when nothing else matches)."""
    head = _head(path)
    if not head:
        raise InputError(path, ("", "empty file: no solution in it"))
    first = head[0]
    if first.startswith("<"):
        return "cplex"
    if first == "Model status":
        return "highs"
    if re.match(r"(?i)(solution status:|objective value:|no solution available)", first):
        return "scip"
    if _CBC_HEADER.match(first):
        return "cbc"
    if "Options" in head:
        return "nl"
    if re.match(r"#\s*(Solution for model|Objective value\s*=|Solution file)", first):
        return "gurobi"
    return "plain"


def read_solution(path: str | os.PathLike, fmt: str = "auto", *, col: str | os.PathLike | None = None,
                  row: str | os.PathLike | None = None) -> SolutionFile:
    """Parse a solution file in one of :data:`SOLUTION_FORMATS` (``"auto"``: :func:`detect_format`).

    Parameters
    ----------
    path : path-like
    fmt : str, default "auto"
    col, row : path-like, optional
        For ``nl``: the ``.col`` / ``.row`` files Pyomo wrote next to the
        ``.nl`` (default: the solution's name with ``.col`` / ``.row``).
        ``.col`` is required; ``.row``, when present, checks the constraint
        count.

    Raises
    ------
    InputError
        Unknown format, unreadable file, or a line that breaks the layout
        (named by line number).
    """
    path = os.fspath(path)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in SOLUTION_FORMATS:
        raise InputError("--format", ("", f"unknown solution format {fmt!r}; valid: auto, "
                                          f"{', '.join(SOLUTION_FORMATS)}"))
    if fmt == "cplex":
        return _read_cplex(path)
    if fmt == "nl":
        return _read_nl(path, col, row)
    return {"highs": _read_highs, "scip": _read_scip, "cbc": _read_cbc}.get(fmt, _read_listing)(path, fmt)


def _pair(path: str, n: int, line: str, *, extra: int = 0) -> tuple[str, str]:
    """``name value`` (up to ``extra`` more tokens allowed), or a one-line error."""
    parts = line.split()
    if not 2 <= len(parts) <= 2 + extra:
        raise InputError(path, (f"line {n}", f"expected 'name value', got {line[:60]!r}"))
    return parts[0], parts[1]


def _read_highs(path: str, fmt: str) -> SolutionFile:
    """HiGHS ``writeSolution`` raw (style 0) and sparse (style 4) layouts.

    Layout (``highs/lp_data/HighsModelUtils.cpp``, ``writeSolutionFile`` and
    ``writeModelSolution``): ``Model status`` and its value; ``# Primal
    solution values`` and ``Feasible`` / ``Infeasible`` / ``None``;
    ``Objective V`` (and, in newer versions such as 1.16, ``Objective_bound V``, ``MIP_rel_gap V``);
    ``# Columns N`` with ``N`` lines ``name value``, or ``# Columns -N`` (sparse)
    with ``N`` lines ``name value index``; then rows, duals and basis, which
    are not needed.
    """
    sol = SolutionFile(path, fmt, complete=True)
    it = _lines(path)
    n, line = next(it, (0, ""))
    if line != "Model status":
        raise InputError(path, (f"line {max(n, 1)}", f"expected 'Model status' (HiGHS raw solution), got {line[:60]!r}"))
    n, sol.status = next(it, (n + 1, ""))
    sol.claims_optimal = sol.status in _OPTIMAL["highs"]
    for n, line in it:
        if line == "# Primal solution values":
            break
    else:
        raise InputError(path, ("", "no '# Primal solution values' section"))
    n, primal = next(it, (n + 1, ""))
    if primal not in ("Feasible", "Infeasible"):
        raise InputError(path, (f"line {n}", f"no primal solution in the file (HiGHS wrote {primal!r}; "
                                             f"model status {sol.status!r})"))
    count = None
    for n, line in it:
        key, _, value = line.partition(" ")
        if key == "Objective":
            sol.objective = _number(value, path, f"line {n}", "objective")
        elif key == "Objective_bound":  # informational; HiGHS writes inf when it has no bound
            try:
                sol.bound = float(value) if math.isfinite(float(value)) else None
            except ValueError:
                sol.bound = None
        elif line.startswith("# Columns "):
            token = line.split()[2]
            if not re.fullmatch(r"-?\d+", token):
                raise InputError(path, (f"line {n}", f"expected '# Columns N', got {line[:60]!r}"))
            count = int(token)
            break
    if count is None:
        raise InputError(path, ("", "no '# Columns' section"))
    sparse = count < 0
    sol.complete = not sparse
    for _ in range(abs(count)):
        n, line = next(it, (n + 1, None))
        if line is None or line.startswith("#"):
            raise InputError(path, (f"line {n}", f"the file ends its columns after {len(sol.entries)} of "
                                                 f"{abs(count)} values"))
        name, value = _pair(path, n, line, extra=1 if sparse else 0)
        sol.entries.append((name, _number(value, path, f"line {n}"), f"line {n}"))
    return sol


def _read_scip(path: str, fmt: str) -> SolutionFile:
    """SCIP's solution file (``src/scip/scip_sol.c``, ``SCIPprintSol``; ``dialog_default.c``, ``write solution``).

    ``solution status: S`` (written by the shell's ``write solution``, not by
    ``writeBestSol``), ``objective value: V`` (or ``unknown``), then one line
    ``name value (obj:c)`` per nonzero variable; ``no solution available``
    when there is none.
    """
    sol = SolutionFile(path, fmt, complete=False)
    seen_any = False
    for n, line in _lines(path):
        if not line:
            continue
        low = line.lower()
        if low.startswith("solution status:"):
            sol.status = line.split(":", 1)[1].strip()
            sol.claims_optimal = sol.status in _OPTIMAL["scip"]
        elif low.startswith("objective value:"):
            v = line.split(":", 1)[1].strip()
            if v != "unknown":
                sol.objective = _number(v, path, f"line {n}", "objective value")
        elif low.startswith("no solution available"):
            raise InputError(path, (f"line {n}", "no solution in the file (SCIP: 'no solution available')"))
        else:
            parts = line.split()
            if len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].startswith("(obj:")):
                raise InputError(path, (f"line {n}", f"expected 'name value (obj:c)', got {line[:60]!r}"))
            sol.entries.append((parts[0], _number(parts[1], path, f"line {n}"), f"line {n}"))
            seen_any = True
    if sol.objective is None and not seen_any:
        raise InputError(path, ("", "no 'objective value:' line and no variable values"))
    return sol


_CBC_HEADER = re.compile(r"(.+?) - objective value (\S+)$")


def _read_cbc(path: str, fmt: str) -> SolutionFile:
    """CBC's ``solution FILE`` (``solu``) output (``CbcSolver.cpp``, the ``CLP_PARAM_ACTION_SOLUTION`` writer).

    First line ``STATUS - objective value V`` (``Optimal``, ``Stopped on time``,
    ``Infeasible``, ...); then one line ``index name value reduced-cost`` per
    nonzero column (``**`` in front marks a value outside its bounds).  With
    ``printingOptions all`` CBC lists the rows first; those names are not
    variables and are rejected by name, so keep the default printing options.
    CBC prints the objective to 8 significant digits (relative error below
    ``5e-9``, well inside the ``1e-6`` check).
    """
    sol = SolutionFile(path, fmt, complete=False)
    it = _lines(path)
    n, line = next(it, (0, ""))
    m = _CBC_HEADER.match(line)
    if not m:
        raise InputError(path, (f"line {max(n, 1)}", f"expected 'STATUS - objective value V' (CBC solution), "
                                                      f"got {line[:60]!r}"))
    sol.status = m.group(1).strip()
    low = sol.status.lower()
    if "infeasible" in low or "no integer solution" in low or "no solution" in low:
        raise InputError(path, ("line 1", f"no integer solution in the file (CBC: {sol.status!r})"))
    sol.claims_optimal = sol.status in _OPTIMAL["cbc"]
    sol.objective = _number(m.group(2), path, "line 1", "objective value")
    for n, line in it:
        if not line:
            continue
        parts = line.split()
        if parts[0] == "**":
            parts = parts[1:]
        if len(parts) != 4 or not parts[0].isdigit():
            raise InputError(path, (f"line {n}", f"expected 'index name value reduced-cost', got {line[:60]!r}"))
        sol.entries.append((parts[1], _number(parts[2], path, f"line {n}"), f"line {n}"))
    return sol


_OBJECTIVE_COMMENT = re.compile(r"#\s*Objective value\s*=\s*(\S+)\s*$", re.IGNORECASE)


def _read_listing(path: str, fmt: str) -> SolutionFile:
    """Gurobi SOL and plain listings: ``name value`` per line, ``#`` comments.

    Gurobi's documented layout (Reference Manual, "SOL format"): variable-value
    pairs, one line per variable of the model, comment lines starting with
    ``#``; Gurobi writes ``# Objective value = V`` as the second comment.
    A plain listing has the same lines but may leave out zeros.
    """
    sol = SolutionFile(path, fmt, complete=(fmt == "gurobi"))
    for n, line in _lines(path):
        if not line:
            continue
        if line.startswith("#"):
            m = _OBJECTIVE_COMMENT.match(line)
            if m:
                sol.objective = _number(m.group(1), path, f"line {n}", "objective value")
            continue
        name, value = _pair(path, n, line)
        sol.entries.append((name, _number(value, path, f"line {n}"), f"line {n}"))
    if not sol.entries:
        raise InputError(path, ("", "no 'name value' lines: no solution in the file"))
    return sol


def _read_cplex(path: str) -> SolutionFile:
    """CPLEX SOL (XML; CPLEX File Formats Reference, "SOL file format", schema ``solution.xsd``).

    ``<CPLEXSolution>`` with ``<header objectiveValue="V" solutionStatusValue="101"
    solutionStatusString="integer optimal solution" .../>`` and
    ``<variables><variable name="x" index="0" value="1"/>...</variables>``.
    A solution-pool file (``<CPLEXSolutions>``) must hold exactly one solution.
    """
    sol = SolutionFile(path, "cplex", complete=True)
    roots = 0
    try:
        for event, el in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                if el.tag == "CPLEXSolution":
                    roots += 1
                    if roots > 1:
                        raise InputError(path, ("<CPLEXSolutions>", "holds more than one solution (a solution "
                                                                    "pool); import one solution file"))
                continue
            if el.tag == "header":
                status = el.get("solutionStatusString")
                sol.status = status
                sol.claims_optimal = status in _OPTIMAL["cplex"]
                if el.get("objectiveValue") is not None:
                    sol.objective = _number(el.get("objectiveValue"), path, "<header>", "objectiveValue")
            elif el.tag == "objective" and sol.objective is None and el.get("index") in (None, "0"):
                sol.objective = _number(el.get("value", ""), path, "<objective>", "value")
            elif el.tag == "variable":
                where = f"<variable> #{len(sol.entries) + 1}"
                name, value = el.get("name"), el.get("value")
                if name is None or value is None:
                    raise InputError(path, (where, "needs both a 'name' and a 'value' attribute"))
                sol.entries.append((name, _number(value, path, where), where))
                el.clear()
            elif el.tag in ("constraint", "linearConstraints"):
                el.clear()
    except FileNotFoundError:
        raise InputError(path, ("", "file not found")) from None
    except IsADirectoryError:
        raise InputError(path, ("", "is a directory, expected a solution file")) from None
    except ET.ParseError as exc:
        line, column = exc.position
        raise InputError(path, (f"line {line}", f"not valid XML (column {column})")) from None
    if roots == 0:
        raise InputError(path, ("", "no <CPLEXSolution> element: not a CPLEX solution file"))
    if not sol.entries:
        raise InputError(path, ("<variables>", "no <variable> values: no solution in the file"))
    return sol


def _read_nl(path: str, col: str | os.PathLike | None, row: str | os.PathLike | None) -> SolutionFile:
    """The AMPL text ``.sol`` of the NL export, with the variable names of the ``.col`` file.

    Layout, as ASL's reader reads it (ampl/mp ``nl-writer2/include/mp/sol-reader2.hpp``):
    message lines up to a blank line; ``Options``; ``nOpts`` (3..9) and the
    options (when option 2 is 3, ``nOpts`` counts two more and a ``vbtol``
    line follows); four counts: constraints, duals given, variables, primal
    values given; the duals; the primal values in the ``.nl`` column order;
    ``objno i solve_result_num`` (0-99 solved, 100-199 solved?, 200-299
    infeasible, 300-399 unbounded, 400-499 limit, 500-599 failure).
    """
    stem = os.path.splitext(path)[0]
    col = os.fspath(col) if col is not None else stem + ".col"
    row = os.fspath(row) if row is not None else stem + ".row"
    if not os.path.isfile(col):
        raise InputError(path, ("", f"an NL solution needs the .col file written next to the .nl "
                                    f"(looked for {col!r}; pass --col)"))
    names = [line for _, line in _lines(col) if line]
    sol = SolutionFile(path, "nl", complete=True)
    it = _lines(path)
    message: list[str] = []
    n, line = 0, ""
    for n, line in it:
        if line == "Options" or (not line and message):
            break
        if line:
            message.append(line)
    sol.status = "; ".join(message) or None
    if line != "Options":
        line = ""
        for n, line in it:
            if line:
                break
        if line and line != "Options":
            raise InputError(path, (f"line {n}", f"expected 'Options' after the solver message, got {line[:60]!r}"))
        if not line:
            raise InputError(path, ("", "no 'Options' line after the solver message: not an AMPL text .sol file"))

    def ints(k: int) -> list[int]:
        out = []
        for _ in range(k):
            i, text = next(it, (n + 1, None))
            if text is None or not re.fullmatch(r"-?\d+", text):
                raise InputError(path, (f"line {i}", f"expected an integer in the Options block, got {text!r}"))
            out.append(int(text))
        return out

    head = ints(4)
    nopts = head[0]
    if not 3 <= nopts <= 9:
        raise InputError(path, ("Options", f"expected between 3 and 9 options, got {nopts}"))
    vbtol = head[2] == 3
    if vbtol:
        nopts -= 2
    rest = ints(nopts + 1)
    if vbtol:
        i, text = next(it, (0, ""))
        _number(text, path, f"line {i}", "vbtol")
    n_cons, n_duals, n_vars, n_values = (head + rest)[nopts + 1: nopts + 5]
    if n_values == 0:
        raise InputError(path, ("", f"no primal values in the file (solver message: {sol.status!r})"))
    if n_vars != len(names) or n_values != n_vars:
        raise InputError(path, ("Options", f"{n_values} primal values for {n_vars} variables, but {col} "
                                           f"names {len(names)}: the .col file is not from this model"))
    if os.path.isfile(row):
        n_rows = sum(1 for _, line in _lines(row) if line)
        if n_cons != n_rows - 1:  # Pyomo lists the objective last in .row
            raise InputError(path, ("Options", f"{n_cons} constraints, but {row} names {n_rows - 1} "
                                               f"(and the objective): the .row file is not from this model"))
    for _ in range(n_duals):
        i, text = next(it, (0, None))
        if text is None:
            raise InputError(path, ("", "the file ends inside the dual values"))
    for name in names:
        i, text = next(it, (0, None))
        if text is None:
            raise InputError(path, ("", f"the file ends after {len(sol.entries)} of {n_values} primal values"))
        sol.entries.append((name, _number(text, path, f"line {i}"), f"line {i}"))
    for i, text in it:
        if not text:
            continue
        parts = text.split()
        if len(parts) != 3 or parts[0] != "objno" or not all(re.fullmatch(r"-?\d+", p) for p in parts[1:]):
            raise InputError(path, (f"line {i}", f"expected 'objno i solve_result_num' after the {n_values} "
                                                 f"primal values, got {text[:60]!r}"))
        code = int(parts[2])
        sol.claims_optimal = 0 <= code <= 99
        sol.status = f"{sol.status or ''} (solve_result_num {code})".strip()
        break
    return sol


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
