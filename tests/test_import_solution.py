"""Round trips export -> another solver -> import-solution -> evaluator, and every malformed solution file.

The solvers write their own files here (HiGHS through highspy, SCIP through
pyscipopt when installed); Gurobi, CPLEX and plain files are written in their
documented layouts from a HiGHS solution of the exported model.  The imported
placement is checked against the brute-force optimum and against T(x)
computed literally from the instance JSON (tests/reference.py).
"""
from __future__ import annotations

import ctypes
import glob
import json
import os
import shutil
import subprocess

import highspy
import pytest

from reference import brute_force, latency_from_definition, random_instance_dict
from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.formulations.export import export_model, write_model
from slimcaching.formulations.import_solution import detect_format, import_solution
from slimcaching.formulations.solve import build_model
from slimcaching.instances.io import write_instance
from slimcaching.instances.validate import instance_from_dict

SEEDS = (0, 4, 8)


def _instance(seed: int):
    d = random_instance_dict(seed, max_layers=2, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6)
    return d, instance_from_dict(d)


def _highs(model_file, *, style: int = 0, first_solution: bool = False, out=None):
    """Solve an exported file with highspy alone and write HiGHS's own solution file; return (path, objective, h).

    ``first_solution``: stop at HiGHS's first incumbent (no presolve, no heuristics), a non-optimal solution.
    """
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.setOptionValue("mip_abs_gap", 0.0)
    if first_solution:
        for k, v in (("mip_max_improving_sols", 1), ("presolve", "off"), ("mip_heuristic_effort", 0.0)):
            assert h.setOptionValue(k, v) == highspy.HighsStatus.kOk
    assert h.readModel(str(model_file)) == highspy.HighsStatus.kOk
    h.run()
    out = str(out or f"{model_file}.{style}.sol")
    h.writeSolution(out, style)
    return out, h.getInfo().objective_function_value, h


def _cache_sets(doc: dict) -> dict[str, set[tuple[int, int]]]:
    return {n: {tuple(p) for p in pairs} for n, pairs in doc["cache"].items()}


def _check_placement(d: dict, imp, optimum: float | None = None):
    """The imported latency is the evaluator's T(x), equals T(x) from the definition, and the optimum when given."""
    inst = instance_from_dict(d)
    doc = imp.to_placement_dict(inst)
    assert doc["latency"] == pytest.approx(latency_from_definition(d, _cache_sets(doc)), rel=1e-12)
    assert doc["feasible"] is True and doc["status"] == "heuristic" and doc["bound"] is None
    if optimum is not None:
        assert doc["latency"] == pytest.approx(optimum, rel=1e-9)
    return doc


# ------------------------------------------------------------------ HiGHS
@pytest.mark.parametrize("seed", SEEDS + (5,))  # seed 5: no expert is worth caching, the model has no x
@pytest.mark.parametrize("formulation", ["level", "assignment"])
@pytest.mark.parametrize("model_fmt", ["mps", "lp"])
def test_highs_round_trip_is_the_optimum(tmp_path, seed, formulation, model_fmt):
    d, inst = _instance(seed)
    opt = brute_force(d)
    model_file = export_model(inst, formulation=formulation, fmt=model_fmt, path=tmp_path / f"m.{model_fmt}")
    for style in (0, 4):  # raw, sparse
        sol, objective, _ = _highs(model_file, style=style)
        assert detect_format(sol) == "highs"
        imp = import_solution(inst, sol, formulation=formulation)
        doc = _check_placement(d, imp, opt)
        assert doc["solution_objective"] == pytest.approx(objective, rel=1e-12)
        assert doc["info"]["solver_status"] == "Optimal" and doc["info"]["objective_source"] == "file"


def test_highs_first_incumbent_is_imported_at_its_own_latency(tmp_path):
    """A solution stopped early: its latency is HiGHS's objective (it is a point of the model) and above T(opt)."""
    from slimcaching.formulations import exact
    from slimcaching.instances.generators import random_instance

    inst = random_instance(layers=2, experts=6, top_k=2, nodes=2, users=2, seed=1, capacity_fraction=0.3)
    model_file = export_model(inst, formulation="assignment", fmt="mps", path=tmp_path / "m.mps")
    sol, objective, h = _highs(model_file, first_solution=True)
    assert h.getModelStatus() != highspy.HighsModelStatus.kOptimal
    imp = import_solution(inst, sol, formulation="assignment")
    assert imp.result.latency == pytest.approx(objective, rel=1e-9)
    assert imp.result.latency > exact(inst, formulation="level").latency * (1 + 1e-3)
    assert imp.result.info["solver_claims_optimal"] is False


def test_cli_round_trip_writes_the_placement_and_evaluate_agrees(tmp_path, capsys):
    d, inst = _instance(5)
    inst_file = tmp_path / "inst.json"
    write_instance(inst, inst_file)
    model = tmp_path / "model.mps"
    assert main(["export", str(inst_file), "--formulation", "level", "--format", "mps", "--output", str(model)]) == 0
    sol, _, _ = _highs(model, out=tmp_path / "model.sol")
    out = tmp_path / "placement.json"
    assert main(["import-solution", str(inst_file), sol, "--formulation", "level", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["latency"] == pytest.approx(brute_force(d), rel=1e-9)
    capsys.readouterr()
    assert main(["evaluate", str(inst_file), str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["latency"] == doc["latency"]


# ------------------------------------------------------------------ SCIP (optional)
def _scip_write_nl_solution(model) -> None:
    """SCIP's AMPL interface writes ``<stem>.sol`` for a model it read from ``<stem>.nl``
    (``SCIPwriteSolutionNl``, what ``scip -AMPL`` calls); pyscipopt does not wrap it."""
    import pyscipopt

    libs = glob.glob(os.path.join(os.path.dirname(pyscipopt.__file__), os.pardir, "pyscipopt.libs", "libscip*"))
    if not libs:
        pytest.skip("this pyscipopt build has no separate libscip to call SCIPwriteSolutionNl from")
    lib = ctypes.CDLL(libs[0])
    if not hasattr(lib, "SCIPwriteSolutionNl"):
        pytest.skip("this SCIP has no AMPL .nl interface")
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    assert lib.SCIPwriteSolutionNl(ctypes.c_void_p(get(model.to_ptr(False), b"scip"))) == 1  # SCIP_OKAY


@pytest.mark.parametrize("formulation", ["level", "assignment"])
def test_scip_round_trip(tmp_path, formulation):
    pyscipopt = pytest.importorskip("pyscipopt")
    for seed in SEEDS:
        d, inst = _instance(seed)
        opt = brute_force(d)
        for model_fmt in ("mps", "lp", "nl"):
            model_file = export_model(inst, formulation=formulation, fmt=model_fmt, path=tmp_path / f"m.{model_fmt}")
            m = pyscipopt.Model()
            m.hideOutput()
            m.readProblem(model_file)
            m.setParam("limits/gap", 1e-9)
            m.optimize()
            assert m.getStatus() == "optimal"
            if model_fmt == "nl":
                _scip_write_nl_solution(m)
                sol = str(tmp_path / "m.sol")
                assert detect_format(sol) == "nl"
            else:
                sol = str(tmp_path / f"m.{model_fmt}.sol")
                m.writeBestSol(sol)
                assert detect_format(sol) == "scip"
            imp = import_solution(inst, sol, formulation=formulation)
            doc = _check_placement(d, imp, opt)
            assert doc["solution_objective"] == pytest.approx(m.getObjVal(), rel=1e-9)


# ------------------------------------------------------------------ CBC (optional: the cbc binary)
@pytest.mark.parametrize("formulation", ["level", "assignment"])
def test_cbc_round_trip(tmp_path, formulation):
    """The COIN-OR ``cbc`` program solves the exported LP and MPS files and writes its own solution file."""
    cbc = shutil.which("cbc")
    if cbc is None:
        pytest.skip("no cbc program on PATH")
    for seed in SEEDS + (5,):
        d, inst = _instance(seed)
        opt = brute_force(d)
        for model_fmt in ("mps", "lp"):
            model_file = export_model(inst, formulation=formulation, fmt=model_fmt, path=tmp_path / f"m.{model_fmt}")
            sol = tmp_path / f"m.{model_fmt}.cbc.txt"
            sol.unlink(missing_ok=True)
            run = subprocess.run([cbc, model_file, "-ratioGap", "0", "-allowableGap", "0", "-threads", "1",
                                  "solve", "solution", str(sol)], capture_output=True, text=True, timeout=120)
            assert run.returncode == 0 and sol.exists(), run.stdout[-500:]
            assert detect_format(sol) == "cbc"
            imp = import_solution(inst, sol, formulation=formulation)
            doc = _check_placement(d, imp, opt)
            assert doc["info"]["solver_status"] == "Optimal" and doc["info"]["solver_claims_optimal"]
            # CBC prints 8 significant digits of the objective
            assert doc["solution_objective"] == pytest.approx(doc["latency"], rel=1e-7)


# ------------------------------------------------------------------ documented layouts, written by hand
@pytest.fixture
def solved(tmp_path):
    """An instance, its exported level LP file and HiGHS's optimal values by column name."""
    d, inst = _instance(3)
    model_file = export_model(inst, formulation="level", fmt="lp", path=tmp_path / "m.lp")
    _, objective, h = _highs(model_file)
    names = list(h.getLp().col_names_)
    values = list(h.getSolution().col_value)
    return d, inst, dict(zip(names, values)), objective


def test_gurobi_layout(tmp_path, solved):
    """Gurobi SOL (Reference Manual, "SOL format"): comments, then one 'name value' line per variable."""
    d, inst, values, objective = solved
    sol = tmp_path / "gurobi.sol"
    sol.write_text("# Solution for model m\n# Objective value = %.17g\n" % objective
                   + "".join(f"{n} {v!r}\n" for n, v in values.items()))
    assert detect_format(sol) == "gurobi"
    doc = _check_placement(d, import_solution(inst, sol, formulation="level"), brute_force(d))
    assert doc["solution_objective"] == objective and doc["info"]["solution_format"] == "gurobi"


def test_cplex_layout(tmp_path, solved):
    """CPLEX SOL (XML; File Formats Reference, "SOL file format"): header attributes and <variable> elements."""
    d, inst, values, objective = solved
    variables = "\n".join(f'  <variable name="{n}" index="{i}" value="{v!r}"/>' for i, (n, v) in enumerate(values.items()))
    sol = tmp_path / "cplex.sol"
    sol.write_text(f"""<?xml version = "1.0" encoding="UTF-8" standalone="yes"?>
<CPLEXSolution version="1.2">
 <header
   problemName="m.lp"
   solutionName="incumbent"
   solutionIndex="-1"
   objectiveValue="{objective!r}"
   solutionTypeValue="3"
   solutionTypeString="primal"
   solutionStatusValue="101"
   solutionStatusString="integer optimal solution"
   solutionMethodString="mip"
   primalFeasible="1"
   dualFeasible="1"
   MIPNodes="0"
   MIPIterations="12"
   writeLevel="1"/>
 <quality
   epInt="1.0000000000000001e-05"
   epRHS="9.9999999999999995e-07"
   maxIntInfeas="0"
   maxPrimalInfeas="0"
   maxX="1"
   maxSlack="4"/>
 <linearConstraints>
  <constraint name="c_u_capacity(n0)_" index="0" slack="0"/>
 </linearConstraints>
 <variables>
{variables}
 </variables>
 <objectiveValues>
  <objective index="0" name="obj" value="{objective!r}"/>
 </objectiveValues>
</CPLEXSolution>
""")
    assert detect_format(sol) == "cplex"
    doc = _check_placement(d, import_solution(inst, sol, formulation="level"), brute_force(d))
    assert doc["info"]["solver_status"] == "integer optimal solution" and doc["info"]["solver_claims_optimal"]


def test_plain_listing_of_nonzero_x_only(tmp_path, solved):
    """A plain listing may give only the nonzero x values; without an objective only T(x) is reported."""
    d, inst, values, _ = solved
    sol = tmp_path / "x.txt"
    sol.write_text("# the placement\n" + "".join(f"{n}  {v}\n" for n, v in values.items()
                                                 if n.startswith("x(") and v > 0.5))
    imp = import_solution(inst, sol, formulation="level")
    doc = _check_placement(d, imp, brute_force(d))
    assert doc["solution_objective"] is None and "states no objective" in doc["message"]


def test_plain_listing_with_gams_names(tmp_path, solved):
    """Names as the GAMS export writes them resolve through the GAMS writer's own symbol map."""
    d, inst, values, objective = solved
    model = build_model(inst, "level")
    lp = write_model(model, str(tmp_path / "n.lp"), "lp")
    gms = write_model(model, str(tmp_path / "n.gms"), "gms")
    by_obj = {id(o): s for s, o in gms.bySymbol.items()}
    lines = [f"{by_obj[id(lp.bySymbol[n])]} {v!r}" for n, v in values.items() if n != "ONE_VAR_CONSTANT"]
    assert any(line.startswith("x_") for line in lines)
    sol = tmp_path / "gams.txt"
    sol.write_text("\n".join(lines) + "\n")
    imp = import_solution(inst, sol, formulation="level", fmt="plain")
    doc = _check_placement(d, imp, brute_force(d))
    # every variable is listed, so the model's objective at those values is reported
    assert doc["info"]["objective_source"] == "computed"
    assert doc["solution_objective"] == pytest.approx(objective, rel=1e-9)


def test_nl_layout_by_hand(tmp_path, solved):
    """AMPL text .sol (message, Options, counts, values in .col order, objno) with Pyomo's .col/.row files."""
    d, inst, values, objective = solved
    export_model(inst, formulation="level", fmt="nl", path=tmp_path / "m.nl")
    model = build_model(inst, "level")
    lp = write_model(model, str(tmp_path / "n.lp"), "lp")
    by_name = {o.name: v for n, v in values.items() if n != "ONE_VAR_CONSTANT" for o in [lp.bySymbol[n]]}
    cols = (tmp_path / "m.col").read_text().split()
    n_rows = len((tmp_path / "m.row").read_text().split()) - 1
    body = "\n".join(repr(by_name[c]) for c in cols)
    sol = tmp_path / "m.sol"
    sol.write_text(f"some solver: optimal solution\n\nOptions\n3\n1\n1\n0\n{n_rows}\n0\n{len(cols)}\n{len(cols)}\n"
                   f"{body}\nobjno 0 0\n")
    imp = import_solution(inst, sol, formulation="level")
    doc = _check_placement(d, imp, brute_force(d))
    assert doc["info"]["objective_source"] == "computed" and doc["info"]["solver_claims_optimal"]
    assert doc["solution_objective"] == pytest.approx(objective, rel=1e-9)
    # the .col file may be elsewhere
    os.rename(tmp_path / "m.col", tmp_path / "names.col")
    with pytest.raises(InputError, match=r"needs the \.col file"):
        import_solution(inst, sol, formulation="level")
    import_solution(inst, sol, formulation="level", col=tmp_path / "names.col")


# ------------------------------------------------------------------ what the check catches
def test_objective_below_the_placement_latency_is_an_error_with_both_numbers(tmp_path, solved):
    d, inst, values, objective = solved
    sol = tmp_path / "g.sol"
    sol.write_text("# Objective value = %r\n" % (objective * 0.9) + "".join(f"{n} {v!r}\n" for n, v in values.items()))
    with pytest.raises(InputError, match=r"solution objective .* but the evaluator gives T = .* \(relative difference"):
        import_solution(inst, sol, formulation="level")


def test_objective_above_the_placement_latency_is_reported(tmp_path, solved):
    d, inst, values, objective = solved
    sol = tmp_path / "g.sol"
    sol.write_text("# Objective value = %r\n" % (objective * 1.1) + "".join(f"{n} {v!r}\n" for n, v in values.items()))
    imp = import_solution(inst, sol, formulation="level")
    assert "above its placement's latency" in imp.result.message
    assert imp.result.info["objective_rel_diff"] == pytest.approx(1 - 1 / 1.1, rel=1e-6)


def test_over_capacity_is_written_and_exits_1(tmp_path, capsys):
    d, inst = _instance(3)
    inst_file = tmp_path / "inst.json"
    write_instance(inst, inst_file)
    names = [n for n in write_model(build_model(inst, "assignment"), str(tmp_path / "m.lp"), "lp").bySymbol
             if n.startswith("x(")]
    sol = tmp_path / "all.txt"
    sol.write_text("".join(f"{n} 1\n" for n in names))
    out = tmp_path / "p.json"
    assert main(["import-solution", str(inst_file), str(sol), "--formulation", "assignment", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "over capacity on node(s)" in err
    doc = json.loads(out.read_text())
    assert doc["feasible"] is False and doc["info"]["over_capacity"]
    assert main(["evaluate", str(inst_file), str(out)]) == 1


HIGHS_OK = ("Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective {obj}\n# Columns {n}\n{cols}"
            "# Rows 0\n\n# Dual solution values\nNone\n")

MALFORMED = [
    # (file content, --format, expected text of the one-line error)
    ("", "auto", "empty file"),
    ("Model status\nInfeasible\n\n# Primal solution values\nNone\n", "auto",
     "line 5: no primal solution in the file (HiGHS wrote 'None'; model status 'Infeasible')"),
    ("Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective 1\n# Columns 3\nx(n0_0_0) 1\n", "highs",
     "ends its columns after 1 of 3 values"),
    ("Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective one\n", "highs",
     "line 6: objective must be a number, got 'one'"),
    ("Model status\nOptimal\n\n# Primal solution values\nFeasible\nObjective 1\n", "highs", "no '# Columns' section"),
    ("solution status: infeasible\nno solution available\n", "auto", "no solution in the file (SCIP"),
    ("objective value: 1\nx(n0_0_0) 1 2 3\n", "scip", "line 2: expected 'name value (obj:c)'"),
    ("<CPLEXSolution><variables><variable name='a' value='1'>", "cplex", "not valid XML"),
    ("<?xml version='1.0'?><solution/>", "cplex", "no <CPLEXSolution> element"),
    ("<CPLEXSolutions><CPLEXSolution/><CPLEXSolution/></CPLEXSolutions>", "auto", "more than one solution"),
    ("<CPLEXSolution><variables><variable name='a' index='0'/></variables></CPLEXSolution>", "cplex",
     "<variable> #1: needs both a 'name' and a 'value' attribute"),
    ("Infeasible - objective value 0.00000000\n", "auto", "line 1: no integer solution in the file (CBC: 'Infeasible')"),
    ("Stopped on time (no integer solution - continuous used) - objective value 1.5\n      0 x(n0_0_0) 0.5 0\n",
     "auto", "no integer solution in the file (CBC: 'Stopped on time (no integer solution - continuous used)')"),
    ("Optimal - objective value 1\n      0 x(n0_0_0) 1\n", "cbc",
     "line 2: expected 'index name value reduced-cost', got"),
    ("Optimal - objective value one\n", "cbc", "line 1: objective value must be a number, got 'one'"),
    ("Optimal\n", "cbc", "line 1: expected 'STATUS - objective value V' (CBC solution)"),
    ("msg\n\nOptions\n3\n1\n1\n", "nl", "expected an integer in the Options block"),
    ("msg\n\nOptions\n3\n1\n1\n0\n9\n0\n2\n2\n1\n1\n", "nl", "2 primal values for 2 variables, but"),
    ("msg\n\nOptions\n3\n1\n1\n0\n9\n0\n1\n0\n", "nl", "no primal values in the file (solver message: 'msg')"),
    ("Model status\nOptimal\n", "nl", "no 'Options' line after the solver message"),
    ("Model status\nOptimal\n\n# Primal solution values\n", "nl", "line 4: expected 'Options' after the solver"),
    ("x 1 2\n", "plain", "line 1: expected 'name value', got 'x 1 2'"),
    ("x nan\n", "plain", "line 1: value must be finite, got 'nan'"),
    ("x 1e999\n", "plain", "value must be finite"),
    ("# nothing\n", "plain", "no 'name value' lines"),
    ("nosuchvar 1\n", "plain", "line 1: 'nosuchvar' is not a variable of the level model of instance"),
]


@pytest.mark.parametrize("content,fmt,needle", MALFORMED)
def test_malformed_solution_is_one_line_exit_2(tmp_path, capsys, content, fmt, needle):
    _, inst = _instance(0)
    inst_file = tmp_path / "inst.json"
    write_instance(inst, inst_file)
    sol = tmp_path / "bad.sol"
    sol.write_text(content)
    (tmp_path / "bad.col").write_text("a\n")
    code = main(["import-solution", str(inst_file), str(sol), "--formulation", "level", "--format", fmt])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.err.startswith(str(sol)) and needle in captured.err


def test_model_rules(tmp_path, solved):
    """Values that cannot come from the exported MILP: duplicates, fractional x, a missing x, the constant."""
    d, inst, values, objective = solved
    lines = [f"{n} {v!r}" for n, v in values.items()]
    x_names = [n for n in values if n.startswith("x(")]

    def attempt(text, fmt="plain"):
        sol = tmp_path / "s.txt"
        sol.write_text(text)
        with pytest.raises(InputError) as exc:
            import_solution(inst, sol, formulation="level", fmt=fmt)
        return str(exc.value)

    assert "is listed twice (first at line 1)" in attempt(f"{x_names[0]} 1\n{x_names[0]} 1\n")
    assert "= 0.5 is not binary" in attempt(f"{x_names[0]} 0.5\n")
    assert "= 1.01 is not binary" in attempt(f"{x_names[0]} 1.01\n")
    gurobi = "\n".join(line for line in lines if not line.startswith(x_names[1] + " ")) + "\n"
    assert "1 placement variable(s) missing" in attempt(gurobi, "gurobi")
    assert "objective constant's column, fixed to 1, but the file gives 0.0" in attempt("ONE_VAR_CONSTANT 0\n")
    # within the integrality tolerance is fine
    sol = tmp_path / "ok.txt"
    sol.write_text("".join(f"{n} {1 - 4e-6 if v > 0.5 else 4e-6}\n" for n, v in values.items() if n in x_names))
    assert import_solution(inst, sol, formulation="level").result.latency == pytest.approx(brute_force(d), rel=1e-9)


def test_wrong_formulation_or_instance_is_named(tmp_path, solved):
    d, inst, values, objective = solved
    sol = tmp_path / "g.sol"
    sol.write_text("# Objective value = %r\n" % objective + "".join(f"{n} {v!r}\n" for n, v in values.items()))
    with pytest.raises(InputError, match=r"is not a variable of the assignment model of instance 'rand-3' \(was the "
                                         r"model exported from this instance with --formulation assignment\?\)"):
        import_solution(inst, sol, formulation="assignment")
    _, other = _instance(0)
    with pytest.raises(InputError, match=r"not a variable of the level model of instance 'rand-0'|evaluator gives"):
        import_solution(other, sol, formulation="level")
