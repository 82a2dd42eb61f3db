"""MoE² instances: format round trips, every validation rule, the generator, the evaluator vs the definition."""
from __future__ import annotations

import copy
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.errors import InputError
from slimcaching.moe2.generator import generate_moe2
from slimcaching.moe2.instance import (
    MOE2_FORMAT, SELECTION_FORMAT, evaluate_moe2, mask_of, moe2_from_dict, parse_subset_key,
    read_moe2_instance, read_selection, selection_from_dict, selection_to_dict, subset_key, subset_max,
    subset_sums, write_moe2_instance,
)


def _base(M: int = 3) -> dict:
    """A small valid instance written by hand: q(S) = |S| / M for category a, |S|^2 for b."""
    keys = [subset_key(m) for m in range(1 << M)]
    return {
        "format": MOE2_FORMAT, "name": "hand", "energy_budget": 10.0, "aggregation_delay": 0.1,
        "servers": [{"name": "orin-0", "kind": "jetson-agx-orin", "power_w": 40.0},
                    {"name": "gpu-0", "kind": "rtx-4090", "power_w": 400.0}],
        "experts": [{"name": f"x{i}", "server": "orin-0" if i % 2 else "gpu-0", "energy": 2.0 + i,
                     "latency": 0.5 + 0.5 * i} for i in range(M)],
        "categories": [
            {"name": "a", "weight": 0.7, "latency_budget": 1.2,
             "quality": {k: (k.count(",") + 1 if k else 0) / M for k in keys}},
            {"name": "b", "weight": 0.3, "latency_budget": 5.0,
             "quality": {k: float((k.count(",") + 1 if k else 0) ** 2) for k in keys}},
        ],
    }


def _mut(fn) -> dict:
    d = copy.deepcopy(_base())
    fn(d)
    return d


def test_hand_instance_reads_into_flat_arrays():
    inst = moe2_from_dict(_base())
    assert (inst.M, inst.C) == (3, 2)
    assert inst.quality.shape == (2, 8)
    assert inst.quality[0, mask_of([0, 2])] == pytest.approx(2 / 3)
    assert list(inst.expert_server) == [1, 0, 1]
    # d_i + a <= D_k: category a (1.2) admits experts 0 (0.6) and 1 (1.1); b admits all
    assert list(inst.allowed_masks()) == [0b011, 0b111]


def test_round_trip_is_exact_and_hash_ignores_name(tmp_path):
    inst = generate_moe2(5, experts=6, categories=2)
    for name in ("i.json", "i.json.gz"):
        write_moe2_instance(inst, tmp_path / name)
        back = read_moe2_instance(tmp_path / name)
        assert back.to_dict() == inst.to_dict()
        assert back.content_hash() == inst.content_hash()
    d = inst.to_dict()
    d["name"] = "other"
    d["metadata"] = {"x": 1}
    assert moe2_from_dict(d).content_hash() == inst.content_hash()
    d["energy_budget"] += 1.0
    assert moe2_from_dict(d).content_hash() != inst.content_hash()


BAD = [
    (lambda d: d.update(format="moe2/0"), r"\$\.format: must be 'moe2-instance/1'"),
    (lambda d: d.pop("energy_budget"), r"\$\.energy_budget: missing required field 'energy_budget'"),
    (lambda d: d.update(energy_budget=-1), r"\$\.energy_budget: must be non-negative and finite"),
    (lambda d: d.update(aggregation_delay="x"), r"\$\.aggregation_delay: must be a number, got str"),
    (lambda d: d.update(servers=[]), r"\$\.servers: must list at least one server"),
    (lambda d: d["servers"][1].update(name="orin-0"), r"\$\.servers\[1\]\.name: duplicate name 'orin-0'"),
    (lambda d: d["servers"][0].update(power_w=0), r"\$\.servers\[0\]\.power_w: must be positive"),
    (lambda d: d["experts"][2].update(server="cloud"), r"\$\.experts\[2\]\.server: unknown server 'cloud'"),
    (lambda d: d["experts"][1].update(energy=float("inf")), r"\$\.experts\[1\]\.energy: must be positive and finite"),
    (lambda d: d["experts"][0].update(latency=0), r"\$\.experts\[0\]\.latency: must be positive and finite"),
    (lambda d: d["experts"][0].pop("name"), r"\$\.experts\[0\]\.name: missing required field 'name'"),
    (lambda d: d.update(categories=[]), r"\$\.categories: must list at least one category"),
    (lambda d: d["categories"][1].update(name="a"), r"\$\.categories\[1\]\.name: duplicate name 'a'"),
    (lambda d: d["categories"][0].update(weight=0), r"\$\.categories\[0\]\.weight: must be positive"),
    (lambda d: d["categories"][0].update(latency_budget=True),
     r"\$\.categories\[0\]\.latency_budget: must be a number, got bool"),
    (lambda d: d["categories"][0].pop("quality"), r"\$\.categories\[0\]\.quality: missing required field"),
    (lambda d: d["categories"][0].update(quality=[0.1]), r"\$\.categories\[0\]\.quality: must be an object"),
    (lambda d: d["categories"][0]["quality"].pop("0,2"),
     r"\$\.categories\[0\]\.quality: quality table must have an entry for each of the 8 subsets; 1 missing, "
     r"e\.g\. '0,2'"),
    (lambda d: d["categories"][1]["quality"].update({"2,0": 1.0}),
     r"\$\.categories\[1\]\.quality\['2,0'\]: key must list distinct expert ids in increasing order"),
    (lambda d: d["categories"][1]["quality"].update({"0,3": 1.0}), r"each in 0\.\.2"),
    (lambda d: d["categories"][1]["quality"].update({"0, 1": 1.0}), r"key must list distinct expert ids"),
    (lambda d: d["categories"][0]["quality"].update({"1": None}),
     r"\$\.categories\[0\]\.quality\['1'\]: quality must be a finite number, got None"),
    (lambda d: d["categories"][0]["quality"].update({"0,1": 0.1}),
     r"\$\.categories\[0\]\.quality: quality must be monotone non-decreasing: q\('0,1'\) = 0\.1 < "
     r"q\('1'\) = 0\.333\d* although adding expert 0 must not lower quality \(1 more such pair\)"),
    (lambda d: d["categories"][1]["quality"].update({"0,1,2": 3.5}),
     r"\$\.categories\[1\]\.quality: quality must be monotone non-decreasing: q\('0,1,2'\) = 3\.5 < "
     r"q\('1,2'\) = 4\.0 although adding expert 0"),
]


@pytest.mark.parametrize("mutate,match", BAD)
def test_every_validation_rule_names_path_and_rule(mutate, match):
    with pytest.raises(InputError, match=match):
        moe2_from_dict(_mut(mutate), file="bad.json")


def test_error_names_the_file_and_counts_further_problems(tmp_path):
    d = _mut(lambda d: (d["experts"][0].update(energy=-1), d["experts"][1].update(latency=-1)))
    p = tmp_path / "two.json"
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match=r"two\.json: \$\.experts\[0\]\.energy: .* \(and 1 more problem\)"):
        read_moe2_instance(p)
    with pytest.raises(InputError, match=r"not a\.json: \$\.experts\[0\]"):
        moe2_from_dict(d, file="not a.json")
    with pytest.raises(InputError, match=r"must be a JSON object, got list"):
        moe2_from_dict([], file="x")


def test_too_many_experts_rejected():
    d = _base()
    d["experts"] = [dict(d["experts"][0], name=f"x{i}") for i in range(17)]
    with pytest.raises(InputError, match=r"\$\.experts: at most 16 experts"):
        moe2_from_dict(d)


def test_monotone_tolerance_is_1e_12():
    ok = _base()
    q = ok["categories"][0]["quality"]
    q["0,1"] = q["0"] - 5e-13  # a drop below 1e-12 is rounding, accepted
    moe2_from_dict(ok)
    q["0,1"] = q["0"] - 1e-9
    with pytest.raises(InputError, match=r"q\('0,1'\) = 0\.33333333233\d* < q\('1'\)"):
        moe2_from_dict(ok)


def test_subset_keys_and_bit_tables():
    for m in range(64):
        assert parse_subset_key(subset_key(m), 6) == m
    assert subset_key(0) == "" and subset_key(0b100101) == "0,2,5"
    assert parse_subset_key("01", 3) is None and parse_subset_key("1,1", 3) is None
    v = np.array([3.0, 1.0, 7.0, 2.0])
    sums, maxs = subset_sums(v), subset_max(v)
    for m in range(16):
        ids = [i for i in range(4) if m >> i & 1]
        assert sums[m] == pytest.approx(sum(v[ids]))
        assert maxs[m] == (max(v[ids]) if ids else 0.0)


# ------------------------------------------------------------------ generator
def test_generator_is_seeded_heterogeneous_and_monotone():
    a, b = generate_moe2(7), generate_moe2(7)
    assert a.to_dict() == b.to_dict()
    assert generate_moe2(8).content_hash() != a.content_hash()
    assert (a.M, a.C) == (8, 3)
    assert set(a.server_kinds) == {"jetson-agx-orin", "rtx-4090"}
    assert a.weight.sum() == pytest.approx(1.0)
    for seed in range(5):
        inst = generate_moe2(seed, experts=7, categories=2)
        moe2_from_dict(inst.to_dict())  # passes every rule, monotonicity included
        masks = np.arange(1 << inst.M)
        for i in range(inst.M):
            w = masks[(masks >> i) & 1 == 0]
            gain = inst.quality[:, w | 1 << i] - inst.quality[:, w]
            assert (gain >= 0).all()
            # diminishing returns: the gain of i shrinks as the set grows
            for j in range(inst.M):
                if j != i:
                    ww = w[(w >> j) & 1 == 0]
                    g_small = inst.quality[:, ww | 1 << i] - inst.quality[:, ww]
                    g_large = inst.quality[:, ww | 1 << i | 1 << j] - inst.quality[:, ww | 1 << j]
                    assert (g_large <= g_small + 1e-12).all()
        assert (inst.quality[:, 0] == 0).all() and (inst.quality <= 1).all()
        # every category admits at least its fastest expert
        assert all(m for m in inst.allowed_masks())


def test_generator_physical_ranges():
    inst = generate_moe2(11, experts=16, categories=2)
    orin = np.array([inst.server_kinds[s] == "jetson-agx-orin" for s in inst.expert_server])
    assert orin.any() and (~orin).any()
    power = inst.server_power[inst.expert_server]
    assert ((30 <= power[orin]) & (power[orin] <= 60)).all()
    assert ((300 <= power[~orin]) & (power[~orin] <= 450)).all()
    # energy = power x compute time, and compute time < latency (network RTT added)
    assert (inst.energy < power * inst.latency).all()
    assert (inst.latency > 0.05).all() and (inst.latency < 60).all()


def test_generator_rejects_bad_sizes():
    with pytest.raises(InputError, match=r"--experts: must be in 1\.\.16, got 17"):
        generate_moe2(0, experts=17)
    with pytest.raises(InputError, match=r"--categories: must be >= 1, got 0"):
        generate_moe2(0, categories=0)


# ------------------------------------------------------------------ evaluator vs the definition
def _definition(inst, sel):
    """``docs/model.md`` section 2 transcribed with loops."""
    obj = energy = 0.0
    lat_ok = True
    for k, ids in enumerate(sel):
        obj += inst.weight[k] * inst.quality[k, sum(1 << i for i in ids)]
        energy += inst.weight[k] * sum(inst.energy[i] for i in ids)
        if ids:
            lat = max(inst.latency[i] for i in ids) + inst.aggregation_delay
            lat_ok &= lat <= inst.latency_budget[k] + 1e-9 * max(1, inst.latency_budget[k])
    feasible = lat_ok and energy <= inst.energy_budget + 1e-9 * max(1, inst.energy_budget)
    return obj, energy, feasible


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), data=st.data())
def test_evaluator_matches_definition(seed, data):
    inst = generate_moe2(seed, experts=5, categories=3, energy_fraction=0.5)
    sel = [sorted(data.draw(st.sets(st.integers(0, 4)))) for _ in range(3)]
    ev = evaluate_moe2(inst, sel)
    obj, energy, feasible = _definition(inst, sel)
    assert ev.objective == pytest.approx(obj, abs=1e-12)
    assert ev.energy == pytest.approx(energy, rel=1e-12)
    assert ev.feasible == feasible


def test_aggregation_delay_applies_to_every_nonempty_selection():
    inst = moe2_from_dict(_base())
    ev = evaluate_moe2(inst, [[1], [], ])
    assert ev.latency[0] == pytest.approx(1.0 + 0.1) and ev.latency[1] == 0.0
    assert ev.latency_ok.all()
    ev = evaluate_moe2(inst, [[2], [0, 1, 2]])  # d_2 + a = 1.6 > 1.2
    assert not ev.latency_ok[0] and ev.latency_ok[1] and not ev.feasible
    ev = evaluate_moe2(inst, [[], [0, 1, 2]])  # energy 0.3 * 9 = 2.7 <= 10
    assert ev.feasible and ev.energy == pytest.approx(2.7)


def test_selection_files(tmp_path):
    inst = moe2_from_dict(_base())
    d = selection_to_dict(inst, [0b011, 0])
    assert d == {"format": SELECTION_FORMAT, "instance": "hand", "selection": {"a": [0, 1], "b": []}}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    assert list(read_selection(p, inst)) == [3, 0]
    bad = [
        ({"format": "x", "selection": {}}, r"\$\.format: must be 'moe2-selection/1'"),
        ({"format": SELECTION_FORMAT, "selection": [[0]]}, r"\$\.selection: must be an object"),
        ({"format": SELECTION_FORMAT, "selection": {"a": [], "c": []}}, r"unknown category 'c'; categories: a, b"),
        ({"format": SELECTION_FORMAT, "selection": {"a": []}}, r"\$\.selection\['b'\]: missing category 'b'"),
        ({"format": SELECTION_FORMAT, "selection": {"a": [3], "b": []}},
         r"\$\.selection\['a'\]\[0\]: expert id must be in 0\.\.2, got 3"),
        ({"format": SELECTION_FORMAT, "selection": {"a": [1, 1], "b": []}}, r"duplicate expert id 1"),
        ({"format": SELECTION_FORMAT, "selection": {"a": ["0"], "b": []}}, r"expert id must be an integer"),
        ({"format": SELECTION_FORMAT, "selection": {"a": 0, "b": []}}, r"must be a list of expert ids"),
    ]
    for obj, match in bad:
        with pytest.raises(InputError, match=match):
            selection_from_dict(obj, inst, file="s.json")


def test_hand_instance_optimum_by_enumeration():
    """Sanity of the hand instance used by the CLI tests: the optimum found from the definition."""
    inst = moe2_from_dict(_base())
    best = max((_definition(inst, [list(a), list(b)])[0], a, b)
               for ra in range(4) for a in itertools.combinations(range(3), ra)
               for rb in range(4) for b in itertools.combinations(range(3), rb)
               if _definition(inst, [list(a), list(b)])[2])
    # energy 10 >= 0.7*(2+3) + 0.3*(2+3+4) = 6.2: everything admissible fits
    assert best[1] == (0, 1) and best[2] == (0, 1, 2)


@pytest.mark.parametrize("key", ["١", "²", "٣", "1" * 5000, "01", "1,١"])
def test_non_ascii_or_non_canonical_subset_keys_are_rejected(tmp_path, capsys, key):
    """'١' (Arabic-Indic one) used to replace q({1}) silently; '²' raised a traceback."""
    from slimcaching.cli import main

    assert parse_subset_key(key, 3) is None
    d = _base()
    d["categories"][0]["quality"][key] = 0.99
    f = tmp_path / "m.json"
    f.write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError, match=r"m.json: \$\.categories\[0\]\.quality\[.*\]: key must list distinct "
                                         r"expert ids in increasing order"):
        read_moe2_instance(f)
    assert main(["moe2", "solve", str(f), "--algorithm", "greedy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "key must list distinct expert ids" in err


def test_finite_energies_whose_total_overflows_are_rejected():
    d = _base()
    for x in d["experts"]:
        x["energy"] = 1e308
    with pytest.raises(InputError, match=r"\$\.experts: energies summed over all experts and categories overflow"):
        moe2_from_dict(d)


def test_generator_never_writes_a_file_its_reader_rejects(tmp_path):
    with pytest.raises(InputError, match=r"--energy-fraction: 1e\+308 gives an infinite energy budget"):
        generate_moe2(1, energy_fraction=1e308)
    with pytest.raises(InputError, match=r"--energy-fraction: must be > 0 and finite, got inf"):
        generate_moe2(1, energy_fraction=float("inf"))
    inst = generate_moe2(1, experts=3)
    bad = type(inst)(**{**{k: getattr(inst, k) for k in inst.__dataclass_fields__}, "energy_budget": -1.0})
    with pytest.raises(InputError, match=r"bad.json: \$\.energy_budget: must be non-negative"):
        write_moe2_instance(bad, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


def test_quality_beyond_float_range_is_one_line():
    """Found by the fuzzer: an integer quality of 10^400 overflowed in the float conversion."""
    d = _base()
    d["categories"][0]["quality"]["0"] = 10**400
    with pytest.raises(InputError, match=r"\$\.categories\[0\]\.quality\['0'\]: quality must be a finite number"):
        moe2_from_dict(d)
