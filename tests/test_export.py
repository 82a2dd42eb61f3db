"""Exported models carry the same optimum (re-read by highspy directly), and the CLI paths."""
from __future__ import annotations

import json

import highspy
import pytest

from reference import random_instance_dict
from slimcaching.cli import main
from slimcaching.errors import InputError, OutputError
from slimcaching.formulations import exact, export_model
from slimcaching.instances.io import write_instance
from slimcaching.instances.validate import instance_from_dict


def _tiny(seed: int):
    return instance_from_dict(random_instance_dict(seed, max_layers=2, max_experts=4, max_k=3, max_nodes=3,
                                                   max_users=3, max_cap=6))


def _highs_optimum(path) -> float:
    """Read a model file with highspy (no Pyomo) and solve it to a proven optimum."""
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.setOptionValue("mip_abs_gap", 0.0)
    assert h.readModel(str(path)) == highspy.HighsStatus.kOk
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("formulation", ["level", "assignment"])
def test_exported_mps_and_lp_have_the_same_optimum(tmp_path, seed, formulation):
    inst = _tiny(seed)
    opt = exact(inst, formulation="level").latency
    for fmt in ("mps", "lp"):
        path = export_model(inst, formulation=formulation, fmt=fmt, path=tmp_path / f"m.{fmt}")
        assert _highs_optimum(path) == pytest.approx(opt, rel=1e-7)


def test_worked_example_exports(tmp_path, worked_example):
    from slimcaching.instances.io import read_instance

    inst = read_instance(worked_example / "tiny.json")
    for formulation in ("level", "assignment"):
        path = export_model(inst, formulation=formulation, fmt="mps", path=tmp_path / "m.mps")
        assert _highs_optimum(path) == pytest.approx(9.172273055346421, rel=1e-9)


def test_relaxation_export_is_the_lp_bound(tmp_path):
    from slimcaching.formulations import lp_bound

    inst = _tiny(3)
    path = export_model(inst, formulation="level", fmt="mps", path=tmp_path / "r.mps", relax=True)
    assert _highs_optimum(path) == pytest.approx(lp_bound(inst, "level"), rel=1e-7)


@pytest.mark.parametrize("fmt", ["mps", "lp"])
def test_scip_cross_check(tmp_path, fmt):
    """Optional: SCIP, an independent solver, finds the same optimum in the exported file."""
    pytest.importorskip("pyscipopt")
    from slimcaching.formulations.export import scip_optimum

    for seed in (0, 5):
        inst = _tiny(seed)
        opt = exact(inst).latency
        for formulation in ("level", "assignment"):
            path = export_model(inst, formulation=formulation, fmt=fmt, path=tmp_path / f"m.{fmt}")
            assert scip_optimum(path, time_limit=60) == pytest.approx(opt, rel=1e-7)


def test_readable_names(tmp_path):
    from slimcaching.instances.generators import random_instance

    inst = random_instance(layers=2, experts=4, top_k=2, nodes=2, users=2, seed=3, capacity_fraction=0.5)
    node = inst.node_names[0]
    assert node == "edge-0"
    lp = export_model(inst, formulation="assignment", fmt="lp", path=tmp_path / "m.lp")
    text = open(lp).read()
    for name in ("x(edge_0_", "y(user_0_", "z(user_0_", "capacity(edge_0)", "assign(", "link(", "z_tau("):
        assert name in text, name
    export_model(inst, formulation="level", fmt="nl", path=tmp_path / "m.nl")
    cols = (tmp_path / "m.col").read_text().split()
    assert any(c.startswith("x[edge-0,") for c in cols)
    assert any(c.startswith("a[") for c in cols) and any(c.startswith("b[") for c in cols)
    rows = (tmp_path / "m.row").read_text().split()
    assert any(r.startswith("avail[") for r in rows) and any(r.startswith("whole[") for r in rows)
    gms = export_model(inst, formulation="level", fmt="gms", path=tmp_path / "m.gms")
    text = open(gms).read()
    assert "SOLVE GAMS_MODEL USING mip minimizing GAMS_OBJECTIVE" in text
    assert "capacity_" in text


def test_constant_is_exported(tmp_path):
    """The level objective's T(empty) reaches every format."""
    inst = _tiny(2)
    from slimcaching.objective import empty_latency

    t0 = f"{empty_latency(inst):.12g}"[:10]
    for fmt in ("lp", "mps", "gms", "nl"):
        export_model(inst, formulation="level", fmt=fmt, path=tmp_path / f"m.{fmt}")
        assert t0 in (tmp_path / f"m.{fmt}").read_text(), fmt


def test_export_errors(tmp_path):
    inst = _tiny(0)
    with pytest.raises(InputError, match=r"--format: unknown format 'xlsx'; valid: lp, mps, nl, gms"):
        export_model(inst, formulation="level", fmt="xlsx", path=tmp_path / "m.x")
    with pytest.raises(InputError, match=r"--formulation: unknown formulation 'flow'; valid: level, assignment"):
        export_model(inst, formulation="flow", fmt="lp", path=tmp_path / "m.lp")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"afile/m.lp: cannot write: Not a directory"):
        export_model(inst, formulation="level", fmt="lp", path=tmp_path / "afile" / "m.lp")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # no temporary file left


# ------------------------------------------------------------------ the CLI
@pytest.fixture
def inst_file(tmp_path):
    inst = _tiny(4)
    path = tmp_path / "inst.json"
    write_instance(inst, path)
    return inst, path


def test_cli_export_then_highs(tmp_path, inst_file):
    inst, path = inst_file
    out = tmp_path / "model.mps"
    assert main(["export", str(path), "--formulation", "assignment", "--format", "mps", "--output", str(out)]) == 0
    assert _highs_optimum(out) == pytest.approx(exact(inst).latency, rel=1e-7)


def test_cli_export_bad_format_is_one_line_exit_2(tmp_path, inst_file, capsys):
    _, path = inst_file
    with pytest.raises(SystemExit) as exc:
        main(["export", str(path), "--formulation", "level", "--format", "xls", "--output", str(tmp_path / "m")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'xls'" in err


def test_cli_export_missing_directory_is_one_line_exit_1(tmp_path, inst_file, capsys):
    _, path = inst_file
    code = main(["export", str(path), "--formulation", "level", "--format", "lp",
                 "--output", str(tmp_path / "no" / "m.lp")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "m.lp: cannot write: directory" in err and "does not exist" in err


def test_cli_solve_exact_writes_status_and_bound(tmp_path, inst_file):
    inst, path = inst_file
    out = tmp_path / "placement.json"
    code = main(["solve", str(path), "--algorithm", "exact", "--formulation", "assignment", "--mip-gap", "0",
                 "--time-limit", "30", "--output", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["status"] == "optimal" and doc["algorithm"] == "exact"
    assert doc["params"]["formulation"] == "assignment" and doc["params"]["mip_gap"] == 0.0
    assert doc["bound"] == pytest.approx(doc["latency"], rel=1e-6) and doc["bound"] <= doc["latency"]
    assert doc["latency"] == pytest.approx(exact(inst, formulation="level").latency, rel=1e-7)


def test_cli_solve_exact_bad_mip_gap_is_one_line_exit_2(inst_file, capsys):
    _, path = inst_file
    with pytest.raises(SystemExit) as exc:
        main(["solve", str(path), "--algorithm", "exact", "--mip-gap", "2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == "slimcaching solve: error: argument --mip-gap: --mip-gap must be finite and in [0, 1), got '2'\n"


def test_nl_export_of_a_model_without_variables_is_one_line(tmp_path):
    from reference import random_instance_dict as rid

    inst = instance_from_dict(rid(5, max_layers=2, max_experts=4, max_k=3, max_nodes=3, max_users=3, max_cap=6))
    with pytest.raises(InputError, match=r"m\.nl: the model has no variables .* the optimum is the empty placement"):
        export_model(inst, formulation="level", fmt="nl", path=tmp_path / "m.nl")
    export_model(inst, formulation="level", fmt="lp", path=tmp_path / "m.lp")  # LP holds the constant alone
