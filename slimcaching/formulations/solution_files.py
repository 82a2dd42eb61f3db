"""Solution files of other MILP solvers, read without a model (no Pyomo import).

One reader per layout of :data:`SOLUTION_FORMATS` (the table in
:mod:`slimcaching.formulations.import_solution`, which maps what is read here
onto the exported model and checks it with the evaluator).  Each reader returns
a :class:`SolutionFile`: the values by name (or by position for ``nl``), the
objective and status the file states, and whether it lists every variable.
"""
from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterator

from ..errors import InputError

__all__ = ["SOLUTION_FORMATS", "INTEGRALITY_TOL", "CONSTANT_TOL", "SolutionFile", "read_solution", "detect_format"]

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
