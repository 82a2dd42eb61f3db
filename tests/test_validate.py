"""Every malformed-input rule: the reader names file, JSON path and rule; the CLI exits 2 with one line."""
from __future__ import annotations

import copy
import json

import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.io import read_instance, read_placement

BASE = {
    "format": "slimcaching-instance/1",
    "name": "t",
    "size_unit": "MiB",
    "layers": [{"experts": 4, "expert_size": 2, "top_k": 2}, {"experts": 3, "expert_size": 1, "top_k": 2}],
    "nodes": [{"name": "a", "capacity": 4}, {"name": "b", "capacity": 2}],
    "users": [
        {"name": "u0", "weight": 0.5, "latency": {"a": 1.0, "b": [2.0, 3.0]}, "cloud_latency": [5.0, 6.0],
         "routing": [[{"experts": [0, 1], "p": 0.5}, {"experts": [2], "p": 0.5}],
                     [{"experts": [0, 2], "p": 1.0}]]},
        {"name": "u1", "weight": 0.5, "latency": {"a": 1.5}, "cloud_latency": 4.0,
         "routing": [[{"experts": [3], "p": 1.0}], [{"experts": [1], "p": 0.25}, {"experts": [0, 1], "p": 0.75}]]},
    ],
}


def _mut(fn):
    d = copy.deepcopy(BASE)
    fn(d)
    return d


def _dump(d) -> str:
    """JSON text; an infinite float is written as the literal 1e400 (valid JSON that overflows to inf)."""
    return json.dumps(d).replace("Infinity", "1e400")


def _set(path, value):
    def f(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return f


def _del(path):
    def f(d):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return f


CASES = [
    # (mutation, expected JSON path, regex of the rule)
    (_set(["format"], "other/1"), r"\$\.format", "unknown format tag"),
    (_del(["layers"]), r"\$\.layers", "missing required field 'layers'"),
    (_set(["nodes"], "x"), r"\$\.nodes", "must be a list"),
    (_set(["layers", 0, "expert_size"], -2), r"\$\.layers\[0\]\.expert_size", "positive integer"),
    (_set(["layers", 0, "expert_size"], 1.5), r"\$\.layers\[0\]\.expert_size", "positive integer"),
    (_set(["layers", 1, "top_k"], 5), r"\$\.layers\[1\]\.top_k", "cannot exceed"),
    (_set(["nodes", 1, "capacity"], -1), r"\$\.nodes\[1\]\.capacity", "non-negative integer"),
    (_set(["nodes", 1, "capacity"], 2.5), r"\$\.nodes\[1\]\.capacity", "non-negative integer"),
    (_set(["nodes", 1, "name"], "a"), r"\$\.nodes\[1\]\.name", "duplicate node name 'a'"),
    (_set(["users", 0, "latency", "zz"], 1.0), r"\$\.users\[0\]\.latency\.zz", "is not a node name"),
    (_set(["users", 0, "latency", "a"], 0.0), r"\$\.users\[0\]\.latency\.a", "positive and finite"),
    (_set(["users", 0, "latency", "a"], -3), r"\$\.users\[0\]\.latency\.a", "positive and finite"),
    (_set(["users", 0, "latency", "a"], "fast"), r"\$\.users\[0\]\.latency\.a", "must be a number"),
    (_set(["users", 0, "latency", "b"], [1.0]), r"\$\.users\[0\]\.latency\.b", "must have 2 entries"),
    (_set(["users", 1, "cloud_latency"], [1.0, 2.0, 3.0]), r"\$\.users\[1\]\.cloud_latency", "must have 2 entries"),
    (_set(["users", 1, "cloud_latency"], 1e400), r"\$\.users\[1\]\.cloud_latency", "positive and finite"),
    (_del(["users", 1, "cloud_latency"]), r"\$\.users\[1\]\.cloud_latency", "missing required field"),
    (_set(["users", 0, "routing", 0, 1, "experts"], [4]), r"\$\.users\[0\]\.routing\[0\]\[1\]\.experts\[0\]",
     "out of range 0..3"),
    (_set(["users", 0, "routing", 0, 1, "experts"], [-1]), r"\.experts\[0\]", "out of range"),
    (_set(["users", 0, "routing", 0, 0, "experts"], [1, 1]), r"\$\.users\[0\]\.routing\[0\]\[0\]\.experts",
     "repeated expert"),
    (_set(["users", 0, "routing", 0, 0, "experts"], [0, 1, 2]), r"\.routing\[0\]\[0\]\.experts",
     "exceeds top_k = 2"),
    (_set(["users", 0, "routing", 0, 0, "experts"], []), r"\.routing\[0\]\[0\]\.experts", "must not be empty"),
    (_set(["users", 0, "routing", 0, 0, "p"], 0.0), r"\.routing\[0\]\[0\]\.p", "must be > 0"),
    (_set(["users", 0, "routing", 0, 0, "p"], -0.5), r"\.routing\[0\]\[0\]\.p", "must be > 0"),
    (_set(["users", 0, "routing", 0, 0, "p"], 0.4), r"\$\.users\[0\]\.routing\[0\]", "sum to 1 within 1e-06"),
    (_set(["users", 0, "weight"], 0.6), r"\$\.users", "weights must sum to 1"),
    (_set(["users", 0, "weight"], 0), r"\$\.users\[0\]\.weight", "positive number"),
    (_set(["users", 0, "routing"], [[{"experts": [0], "p": 1.0}]]), r"\$\.users\[0\]\.routing",
     "one list per layer"),
    (_set(["users", 0, "routing", 1], []), r"\$\.users\[0\]\.routing\[1\]", "non-empty list"),
    (_set(["users", 0, "routing", 1, 0, "experts"], [0, "x"]), r"\.experts\[1\]", "must be an integer"),
    (_set(["users", 0, "routing", 0, 1, "experts"], [1, 0]), r"\.routing\[0\]\[1\]\.experts", "listed twice"),
]


@pytest.mark.parametrize("mutate,path,rule", CASES)
def test_reader_names_path_and_rule(tmp_path, mutate, path, rule):
    f = tmp_path / "bad.json"
    f.write_text(_dump(_mut(mutate)))
    with pytest.raises(InputError, match=path + ".*" + rule.replace("(", r"\(")):
        read_instance(f)


@pytest.mark.parametrize("mutate,path,rule", CASES)
def test_cli_validate_exits_2_with_one_line(tmp_path, capsys, mutate, path, rule):
    f = tmp_path / "bad.json"
    f.write_text(_dump(_mut(mutate)))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(f) in err
    assert __import__("re").search(path, err) and rule in err


def test_valid_base_is_accepted(tmp_path, capsys):
    f = tmp_path / "ok.json"
    f.write_text(json.dumps(BASE))
    assert main(["validate", str(f)]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_all_problems_are_collected(tmp_path):
    d = _mut(_set(["nodes", 1, "capacity"], -1))
    d["users"][0]["latency"]["zz"] = 1.0
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"and 1 more problem") as exc:
        read_instance(f)
    assert len(exc.value.problems) == 2


@pytest.mark.parametrize("content,rule", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "top level must be a JSON object"),
])
def test_unreadable_files(tmp_path, capsys, content, rule):
    f = tmp_path / "x.json"
    f.write_text(content)
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert rule in err and err.count("\n") == 1


def test_missing_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.json")]) == 2
    assert "file not found" in capsys.readouterr().err


PLACEMENT_CASES = [
    ({"format": "x", "cache": {}}, r"\$\.format", "unknown format tag"),
    ({"format": "slimcaching-placement/1"}, r"\$\.cache", "missing required field 'cache'"),
    ({"format": "slimcaching-placement/1", "cache": {"zz": []}}, r"\$\.cache\.zz", "unknown node 'zz'"),
    ({"format": "slimcaching-placement/1", "cache": {"a": [[0, 4]]}}, r"\$\.cache\.a\[0\]", "expert 4 out of range"),
    ({"format": "slimcaching-placement/1", "cache": {"a": [[2, 0]]}}, r"\$\.cache\.a\[0\]", "layer 2 out of range"),
    ({"format": "slimcaching-placement/1", "cache": {"a": [[0, 1], [0, 1]]}}, r"\$\.cache\.a\[1\]",
     "duplicate cache entry"),
    ({"format": "slimcaching-placement/1", "cache": {"a": [[0]]}}, r"\$\.cache\.a\[0\]", "pair of integers"),
    ({"format": "slimcaching-placement/1", "cache": {"a": "x"}}, r"\$\.cache\.a", "list of"),
]


@pytest.mark.parametrize("data,path,rule", PLACEMENT_CASES)
def test_placement_rules(tmp_path, capsys, data, path, rule):
    inst_f = tmp_path / "i.json"
    inst_f.write_text(json.dumps(BASE))
    f = tmp_path / "p.json"
    f.write_text(json.dumps(data))
    with pytest.raises(InputError, match=path + ".*" + rule):
        read_placement(f, read_instance(inst_f))
    assert main(["evaluate", str(inst_f), str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and rule in err and str(f) in err


def test_evaluate_over_capacity_exits_1(tmp_path, capsys):
    inst_f = tmp_path / "i.json"
    inst_f.write_text(json.dumps(BASE))
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": {"b": [[0, 0], [0, 1]]}}))
    assert main(["evaluate", str(inst_f), str(f)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] is False and out["over_capacity"] == ["b"]
    f.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": {"b": [[0, 2]]}}))
    assert main(["evaluate", str(inst_f), str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["feasible"] is True and out["latency"] < out["empty_latency"]
    assert out["reduction"] == pytest.approx(out["empty_latency"] - out["latency"])


@pytest.mark.parametrize("argv,needle", [
    (["solve", "X", "--algorithm", "nope"], "unknown algorithm 'nope'"),
    (["generate", "--layers", "0"], "--layers must be >= 1"),
    (["generate", "--experts", "abc"], "must be an integer"),
    (["solve", "X", "--algorithm", "greedy", "--time-limit", "-1"], "--time-limit must be > 0"),
    (["export", "X", "--formulation", "level", "--format", "xyz", "--output", "o"], "invalid choice"),
])
def test_bad_options_exit_2_one_line(capsys, argv, needle):
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


# ------------------------------------------------------------------ limits, overflow, non-finite results
def test_experts_beyond_the_sanity_cap_are_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "e9.json"
    f.write_text(json.dumps(_mut(_set(["layers", 0, "experts"], 10**9))))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"{f}: $.layers[0].experts: must be a positive integer at most 65536, got 1000000000")


def test_instance_too_large_for_the_evaluator_arrays(tmp_path):
    from slimcaching.instances.validate import LIMITS

    d = _mut(_set(["layers", 0, "experts"], LIMITS["experts"]))
    d["layers"] *= 600  # 1200 layers of up to 65536 experts: U*L*E = 2 * 1200 * 65536 > 2^26
    for u in d["users"]:
        u["routing"] *= 600
        u["latency"] = {"a": 1.0}
        u["cloud_latency"] = 4.0
    f = tmp_path / "wide.json"
    f.write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"wide.json: \$: instance too large: users x layers x experts = "
                                         r"157286400 exceeds the limit of 67108864"):
        read_instance(f)


def test_over_capacity_is_exact_beyond_int64(tmp_path, capsys):
    """expert_size = capacity = 2^62 with four experts cached wrapped to 0 in int64 and passed as feasible."""
    import numpy as np

    from slimcaching.instances.generators import assemble
    from slimcaching.instances.model import Placement
    from slimcaching.objective import evaluate

    inst = assemble(name="big", experts=[4], expert_size=[2**62], top_k=[1], node_names=["a"], capacity=[2**62],
                    user_names=["u"], weight=[1.0], latency=np.ones((1, 1, 1)), cloud_latency=np.full((1, 1), 2.0),
                    routing=[[(np.array([[0]]), np.array([1.0]))]])
    p = Placement(np.ones((1, 1, 4), dtype=bool))
    ev = evaluate(inst, p)
    assert ev.feasible is False and ev.over_capacity == ["a"]
    assert int(ev.storage_used[0]) == 2**64 and not p.is_feasible(inst)
    assert Placement(np.eye(1, 4, dtype=bool)[None]).is_feasible(inst)
    # from files: such sizes are beyond what the formats accept (exact in float64, sums exact in int64)
    d = _mut(_set(["layers", 0, "expert_size"], 2**62))
    d["nodes"][0]["capacity"] = 2**62
    f = tmp_path / "big.json"
    f.write_text(json.dumps(d))
    pf = tmp_path / "p.json"
    pf.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": {"a": [[0, 0], [0, 1], [0, 2], [0, 3]]}}))
    assert main(["evaluate", str(f), str(pf)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{f}: $.layers[0].expert_size: must be a positive integer at most 9007199254740992, "
                          f"got 4611686018427387904")


def test_finite_latencies_whose_sum_overflows_are_rejected(tmp_path, capsys):
    """A finite cloud_latency of 1.7e308 per layer made evaluate print Infinity, which is not JSON."""
    f = tmp_path / "huge.json"
    f.write_text(json.dumps(_mut(_set(["users", 0, "cloud_latency"], 1.7e308))))
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"format": "slimcaching-placement/1", "cache": {}}))
    assert main(["evaluate", str(f), str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"{f}: $.users[0].cloud_latency: cloud latencies summed over the layers overflow a float "
                   "(T(empty) must be finite): use a larger latency unit\n")
    f.write_text(json.dumps(_mut(_set(["users", 0, "cloud_latency"], 1e307))))
    assert main(["evaluate", str(f), str(p)]) == 0
    assert json.loads(capsys.readouterr().out)["empty_latency"] > 1e306


def test_control_characters_from_keys_are_escaped(tmp_path, capsys):
    f = tmp_path / "esc.json"
    f.write_text(json.dumps(_mut(_set(["users", 0, "latency", "x\r\x1b[2Jy"], 1.0))))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err and err.count("\n") == 1
    assert "latency.x\\r\\x1b[2Jy: latency key 'x\\r\\x1b[2Jy' is not a node name" in err


def test_probability_beyond_float_range_is_one_line(tmp_path, capsys):
    """Found by the fuzzer: an integer p of 10^400 overflowed while converting to float."""
    f = tmp_path / "p.json"
    f.write_text(json.dumps(_mut(_set(["users", 0, "routing", 0, 0, "p"], 10**400))))
    assert main(["validate", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{f}: $.users[0].routing[0][0].p: probability must be > 0 and finite, got 1000000000")
    assert err.count("\n") == 1
