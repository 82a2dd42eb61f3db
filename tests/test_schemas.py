"""The published JSON Schemas against every shipped file, every command output, and the validators' cases.

Agreement with the validators: every malformed-input case of tests/test_validate.py
and tests/test_moe2_instances.py that breaks a structural rule is rejected by
the schema too; the cases that break a rule relating fields (listed below,
by the path and rule the validator reports) are the validator's alone, and
the schema accepts them, so the list says exactly what a schema check leaves out.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

import test_moe2_instances as moe2_cases
import test_validate as caching_cases
from reference import random_instance_dict
from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.fileio import read_json
from slimcaching.instances.validate import instance_from_dict
from slimcaching.moe2.generator import generate_moe2
from slimcaching.moe2.instance import moe2_from_dict
from slimcaching.schemas import SCHEMAS, load_schema, schema_names

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for d in ("instances", "tests/data", "docs/worst-case") for p in (ROOT / d).rglob("*.json*")
                 if p.name.endswith((".json", ".json.gz")))


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def _valid(name: str, doc) -> bool:
    return _validator(name).is_valid(json.loads(json.dumps(doc)))


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_each_schema_is_draft_2020_12_and_stands_alone(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    # every $ref resolves inside the printed document (no registry needed)
    _validator(name).is_valid({})


def _shipped_params():
    """One case per shipped file.  jsonschema takes 1-30 s CPU for each compressed or > 150 kB file
    (the paper-scale instances: 93 s together), so those run with the slow tests."""
    return [pytest.param(p, id=str(p.relative_to(ROOT)), marks=[pytest.mark.slow] if _big(p) else [])
            for p in SHIPPED]


def _big(p: Path) -> bool:
    return p.name.endswith(".gz") or p.stat().st_size > 150_000


@pytest.mark.parametrize("path", _shipped_params())
def test_every_shipped_file_with_a_schema_validates(path):
    doc = read_json(path)
    fmt = doc.get("format") if isinstance(doc, dict) else None
    if fmt not in SCHEMAS:
        assert fmt in (None, "slimcaching-worstcase/1"), f"{path}: a format without a schema: {fmt!r}"
        return
    errors = [e.message for e in _validator(fmt).iter_errors(doc)]
    assert not errors, errors[:3]


def test_the_shipped_files_are_all_found():
    formats = [read_json(p).get("format") for p in SHIPPED if not _big(p)]
    assert len(SHIPPED) >= 122 and formats.count("slimcaching-placement/1") >= 1
    assert sum(1 for p in SHIPPED if "instances/paper" in p.as_posix()) == 12


@pytest.mark.parametrize("seed", range(40))
def test_random_valid_instances_validate(seed):
    d = random_instance_dict(seed)
    instance_from_dict(d)
    assert _valid("slimcaching-instance/1", d)


@pytest.mark.parametrize("seed,experts,categories", [(0, 3, 1), (1, 8, 3), (2, 12, 2), (7, 1, 1),
                                                     pytest.param(3, 16, 2, marks=pytest.mark.slow)])
def test_generated_and_hand_moe2_instances_validate(seed, experts, categories):
    assert _valid("moe2-instance/1", generate_moe2(seed, experts=experts, categories=categories).to_dict())
    assert _valid("moe2-instance/1", moe2_cases._base())


# ------------------------------------------------------------------ agreement with the validators
#: (path, rule) of tests/test_validate.py CASES that relate fields: the validator's alone.
CACHING_CROSS_FIELD = {
    (r"\$\.layers\[1\]\.top_k", "cannot exceed"),
    (r"\$\.nodes\[1\]\.name", "duplicate node name 'a'"),
    (r"\$\.users\[0\]\.latency\.zz", "is not a node name"),
    (r"\$\.users\[0\]\.latency\.b", "must have 2 entries"),
    (r"\$\.users\[1\]\.cloud_latency", "must have 2 entries"),
    (r"\$\.users\[0\]\.routing\[0\]\[1\]\.experts\[0\]", "out of range 0..3"),
    (r"\.routing\[0\]\[0\]\.experts", "exceeds top_k = 2"),
    (r"\$\.users\[0\]\.routing\[0\]", "sum to 1 within 1e-06"),
    (r"\$\.users", "weights must sum to 1"),
    (r"\$\.users\[0\]\.routing", "one list per layer"),
    (r"\.routing\[0\]\[1\]\.experts", "listed twice"),
}

#: tests/test_validate.py PLACEMENT_CASES whose rule needs the instance.
PLACEMENT_CROSS_FIELD = {"unknown node 'zz'", "expert 4 out of range", "layer 2 out of range"}

#: tests/test_moe2_instances.py BAD cases that relate fields.
MOE2_CROSS_FIELD = ("duplicate name", "unknown server", "must have an entry for each",
                    "increasing order", r"each in 0\.\.2", "monotone")
"""Substrings of the expected-message patterns of those cases."""


@pytest.mark.parametrize("mutate,path,rule", caching_cases.CASES)
def test_instance_schema_rejects_every_structural_case(mutate, path, rule):
    doc = caching_cases._mut(mutate)
    with pytest.raises(InputError):
        instance_from_dict(json.loads(json.dumps(doc)))
    assert _valid("slimcaching-instance/1", doc) is ((path, rule) in CACHING_CROSS_FIELD)


def test_the_cross_field_lists_name_existing_cases():
    assert CACHING_CROSS_FIELD <= {(p, r) for _, p, r in caching_cases.CASES}
    assert PLACEMENT_CROSS_FIELD <= {r for _, _, r in caching_cases.PLACEMENT_CASES}
    for frag in MOE2_CROSS_FIELD:
        assert any(frag in m for _, m in moe2_cases.BAD), frag


@pytest.mark.parametrize("data,path,rule", caching_cases.PLACEMENT_CASES)
def test_placement_schema_rejects_every_structural_case(data, path, rule):
    assert _valid("slimcaching-placement/1", data) is (rule in PLACEMENT_CROSS_FIELD)


@pytest.mark.parametrize("mutate,match", moe2_cases.BAD)
def test_moe2_schema_rejects_every_structural_case(mutate, match):
    doc = moe2_cases._mut(mutate)
    with pytest.raises(InputError):
        moe2_from_dict(copy.deepcopy(doc))
    cross = any(frag in match for frag in MOE2_CROSS_FIELD)
    assert _valid("moe2-instance/1", doc) is cross


@pytest.mark.parametrize("doc", [[1, 2], "x", None])
def test_top_level_must_be_an_object(doc):
    for name in ("slimcaching-instance/1", "slimcaching-placement/1", "moe2-instance/1"):
        assert not _valid(name, doc)


def test_moe2_size_cap_and_key_syntax():
    d = moe2_cases._base()
    d["experts"] = [dict(d["experts"][0], name=f"x{i}") for i in range(17)]
    assert not _valid("moe2-instance/1", d)  # the validator: "at most 16 experts"
    d = moe2_cases._base()
    d["categories"][0]["quality"]["01"] = 0.5  # leading zero: not a canonical key
    assert not _valid("moe2-instance/1", d)


# ------------------------------------------------------------------ command outputs
def test_solve_output_of_every_algorithm_validates(worked_example):
    from slimcaching.algorithms import REGISTRY, run
    from slimcaching.instances.io import read_instance

    inst = read_instance(worked_example / "tiny.json")
    for name in REGISTRY:
        doc = run(inst, name, seed=0, time_limit=20).to_placement_dict(inst)
        errors = [e.message for e in _validator("solve-output").iter_errors(json.loads(json.dumps(doc)))]
        assert not errors, (name, errors)
    bad = copy.deepcopy(doc)
    bad["status"] = "proven"
    assert not _valid("solve-output", bad)
    del bad["status"]
    bad["cache"] = {"srv0": [[0]]}
    assert not _valid("solve-output", bad)


def test_import_solution_output_is_a_placement(tmp_path, worked_example):
    from slimcaching.formulations.export import export_model
    from slimcaching.formulations.import_solution import import_solution
    from slimcaching.instances.io import read_instance
    from test_import_solution import _highs

    inst = read_instance(worked_example / "tiny.json")
    sol, _, _ = _highs(export_model(inst, formulation="level", fmt="mps", path=tmp_path / "m.mps"))
    doc = import_solution(inst, sol, formulation="level").to_placement_dict(inst)
    assert _valid("slimcaching-placement/1", doc) and _valid("solve-output", doc)


def test_certify_output_schema_states_the_described_fields():
    doc = {"latency": 0.12, "bound": 0.11, "gap": 0.083, "status": "feasible", "latency_method": "best",
           "bound_method": "lp:level", "placement": {"format": "slimcaching-placement/1", "cache": {}},
           "instance_hash": "5df44ddd5d5c3edf", "versions": {"slimcaching": "0.1.0"}, "seed": 0}
    assert _valid("certify-output", doc)
    for key in ("latency", "bound", "gap", "status", "latency_method", "bound_method", "placement"):
        assert not _valid("certify-output", {k: v for k, v in doc.items() if k != key}), key
    assert not _valid("certify-output", dict(doc, gap=-0.1))


# ------------------------------------------------------------------ the command
def test_schema_command_prints_each_schema(capsys):
    for name in schema_names():
        assert main(["schema", name]) == 0
        assert json.loads(capsys.readouterr().out) == load_schema(name)


@pytest.mark.parametrize("argv,needle", [(["schema", "instance"], "unknown schema 'instance'; valid: "),
                                         (["schema"], "name a schema: ")])
def test_schema_command_lists_the_names_on_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and ", ".join(schema_names()) in err
