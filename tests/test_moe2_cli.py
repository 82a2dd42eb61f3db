"""``slimcaching moe2 generate | solve | evaluate``: outputs, exit codes 0 / 1 / 2, one-line errors."""
from __future__ import annotations

import json
import re
import time

import pytest

from slimcaching.moe2.algorithms import MOE2_ALGORITHMS
from slimcaching.cli import main
from slimcaching.moe2.instance import SELECTION_FORMAT, read_moe2_instance


@pytest.fixture(scope="module")
def inst_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("moe2") / "inst.json"
    assert main(["moe2", "generate", "--seed", "3", "--output", str(p)]) == 0
    return p


def _run(capsys, argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_generate_default_size_is_solved_by_exhaustive_in_seconds(inst_file, capsys):
    inst = read_moe2_instance(inst_file)
    assert (inst.M, inst.C) == (8, 3)
    t = time.perf_counter()
    rc, out, err = _run(capsys, ["moe2", "solve", inst_file, "--algorithm", "exhaustive"])
    assert rc == 0 and err == ""
    assert time.perf_counter() - t < 10
    d = json.loads(out)
    assert d["status"] == "optimal" and d["feasible"] is True


def test_generate_is_seeded_and_sized(tmp_path, capsys):
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    assert main(["moe2", "generate", "--seed", "9", "--experts", "5", "--categories", "2", "-o", str(a)]) == 0
    assert main(["moe2", "generate", "--seed", "9", "--experts", "5", "--categories", "2", "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    inst = read_moe2_instance(a)
    assert (inst.M, inst.C) == (5, 2)
    rc, out, _ = _run(capsys, ["moe2", "generate", "--seed", "1", "--experts", "2", "--categories", "1"])
    assert rc == 0 and json.loads(out)["format"] == "moe2-instance/1"


@pytest.mark.parametrize("name", list(MOE2_ALGORITHMS))
def test_solve_prints_one_json_object_for_every_algorithm(inst_file, capsys, name):
    rc, out, err = _run(capsys, ["moe2", "solve", inst_file, "--algorithm", name, "--seed", "2"])
    assert rc == 0 and err == ""
    d = json.loads(out)
    for key in ("objective", "selection", "energy", "feasible", "oracle_calls", "runtime_s", "status"):
        assert key in d
    assert d["algorithm"] == name and d["feasible"] is True
    assert set(d["selection"]) == {"cat0", "cat1", "cat2"}
    assert d["status"] == ("optimal" if name in ("dmo", "exhaustive", "exact") else "heuristic")


def test_solve_output_is_a_selection_file_for_evaluate(inst_file, tmp_path, capsys):
    sel = tmp_path / "sel.json"
    assert main(["moe2", "solve", str(inst_file), "--algorithm", "dmo", "--output", str(sel)]) == 0
    solved = json.loads(sel.read_text())
    assert solved["format"] == SELECTION_FORMAT
    rc, out, _ = _run(capsys, ["moe2", "evaluate", inst_file, sel])
    d = json.loads(out)
    assert rc == 0 and d["feasible"] is True
    assert d["objective"] == solved["objective"] and d["energy"] == solved["energy"]
    assert set(d["categories"]["cat0"]) >= {"selection", "latency", "latency_ok", "quality"}


def test_evaluate_exit_1_when_a_budget_is_violated(inst_file, tmp_path, capsys):
    inst = read_moe2_instance(inst_file)
    everything = list(range(inst.M))
    p = tmp_path / "all.json"
    p.write_text(json.dumps({"format": SELECTION_FORMAT, "selection": {n: everything for n in inst.category_names}}))
    rc, out, err = _run(capsys, ["moe2", "evaluate", inst_file, p])
    d = json.loads(out)
    assert rc == 1 and d["feasible"] is False and err == ""
    assert d["energy_ok"] is False or not all(c["latency_ok"] for c in d["categories"].values())
    p.write_text(json.dumps({"format": SELECTION_FORMAT, "selection": {n: [] for n in inst.category_names}}))
    rc, out, _ = _run(capsys, ["moe2", "evaluate", inst_file, p])
    assert rc == 0 and json.loads(out)["objective"] == 0.0


@pytest.mark.parametrize("argv,match", [
    (["moe2", "solve", "{inst}", "--algorithm", "simplex"], r"argument --algorithm: invalid choice: 'simplex'"),
    (["moe2", "solve", "{inst}", "--algorithm", "dmo", "--time-limit", "0"], r"--time-limit must be > 0"),
    (["moe2", "solve", "{inst}", "--algorithm", "dmo", "--param", "depth=2"],
     r"unknown parameter\(s\) depth for dmo"),
    (["moe2", "solve", "{missing}", "--algorithm", "dmo"], r"missing\.json: file not found"),
    (["moe2", "solve", "{garbage}", "--algorithm", "dmo"], r"garbage\.json: \$: not valid JSON"),
    (["moe2", "solve", "{caching}", "--algorithm", "dmo"], r"caching\.json: \$\.format: must be 'moe2-instance/1'"),
    (["moe2", "evaluate", "{inst}", "{badsel}"], r"badsel\.json: \$\.selection\['cat0'\]\[0\]: expert id must be in"),
    (["moe2", "generate", "--seed", "1", "--experts", "17"], r"--experts must be <= 16, got 17"),
    (["moe2", "generate", "--seed", "1", "--experts", "0"], r"--experts must be >= 1"),
    (["moe2", "generate"], r"the following arguments are required: --seed"),
    (["moe2"], r"required: moe2_command"),
])
def test_malformed_input_exit_2_with_one_line(inst_file, tmp_path, capsys, argv, match):
    (tmp_path / "garbage.json").write_text("{not json")
    (tmp_path / "caching.json").write_text(json.dumps({"format": "slimcaching-instance/1"}))
    (tmp_path / "badsel.json").write_text(json.dumps(
        {"format": SELECTION_FORMAT, "selection": {"cat0": [99], "cat1": [], "cat2": []}}))
    paths = {"inst": inst_file, "missing": tmp_path / "missing.json", "garbage": tmp_path / "garbage.json",
             "caching": tmp_path / "caching.json", "badsel": tmp_path / "badsel.json"}
    argv = [a.format(**paths) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(match, err), err



def test_solve_passes_params_and_time_limit(inst_file, capsys):
    rc, out, _ = _run(capsys, ["moe2", "solve", inst_file, "--algorithm", "dmo", "--param", "master=joint",
                               "--time-limit", "30"])
    d = json.loads(out)
    assert rc == 0 and d["params"] == {"time_limit": 30.0, "master": "joint"} and d["status"] == "optimal"
    rc, out2, _ = _run(capsys, ["moe2", "solve", inst_file, "--algorithm", "exact"])
    assert json.loads(out2)["objective"] == pytest.approx(d["objective"], abs=1e-9)
