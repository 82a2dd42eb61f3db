"""Suites: byte-for-byte regeneration, sizes fit their purpose, capacity parsing, the suite command."""
from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.io import read_instance
from slimcaching.instances.suites import SUITES, generate_suite, model_instance, parse_capacity, suite_specs

ROOT = Path(__file__).resolve().parents[1] / "instances"


def _committed(suite: str) -> list[Path]:
    return sorted(p for p in (ROOT / suite).iterdir() if p.name != ".gitkeep")


@pytest.mark.parametrize("suite", ["tiny", "small"])
def test_regenerating_a_suite_reproduces_the_committed_files_byte_for_byte(suite, tmp_path):
    written = generate_suite(suite, tmp_path / suite)
    assert sorted(p.name for p in written) == [p.name for p in _committed(suite)]
    for p in written:
        assert p.read_bytes() == (ROOT / suite / p.name).read_bytes(), p.name


@pytest.mark.parametrize("suite,entry", [("paper", "paper-switch-base-8-wifi-jetson-bf16"),
                                         ("mixed-precision", "mixed-switch-base-8-wifi-rtx")])
def test_regenerating_a_cheap_large_suite_file_is_byte_identical(suite, entry, tmp_path):
    (p,) = generate_suite(suite, tmp_path, only=[entry])
    assert p.read_bytes() == (ROOT / suite / p.name).read_bytes()


def test_every_listed_file_is_committed_with_its_parameters():
    for suite in SUITES:
        specs = suite_specs(suite)
        with open(ROOT / suite / "index.csv") as fh:
            index = list(csv.DictReader(fh))
        assert [r["file"] for r in index] == [e.filename for e in specs]
        for e in specs:
            assert (ROOT / suite / e.filename).exists()
    readme = (ROOT / "README.md").read_text()
    for suite in SUITES:
        assert f"`{suite}/`" in readme


def _maximal_cache_combinations(inst) -> int:
    """Product over nodes of the inclusion-maximal caches that fit (what exhaustive search enumerates)."""
    sizes = np.repeat(inst.expert_size, inst.experts)                 # one entry per (l, e)
    M = len(sizes)
    masks = ((np.arange(2**M)[:, None] >> np.arange(M)[None, :]) & 1).astype(bool)
    used = masks @ sizes
    out = 1
    for q in inst.capacity:
        fits = used <= q
        can_add = ((~masks) & (used[:, None] + sizes[None, :] <= q)).any(axis=1)
        out *= int((fits & ~can_add).sum())
    return out


def test_tiny_is_brute_force_size_and_carries_its_generator_parameters():
    files = _committed("tiny")
    assert 38 <= len([f for f in files if f.suffix == ".json"]) <= 45
    for f in files:
        if f.suffix != ".json":
            continue
        inst = read_instance(f)
        assert inst.N <= 3 and inst.L * inst.max_experts <= 12
        assert _maximal_cache_combinations(inst) <= 30_000
        meta = inst.metadata
        assert meta["generator"] == "slimcaching.instances.suites.model_instance"
        assert meta["params"]["seed"] >= 1000 and meta["suite_entry"] == inst.name
        assert meta["architecture"]["source"].endswith("config.json")
    # the parameters in a file are enough to rebuild it
    inst = read_instance(files[7])
    again = model_instance(**inst.metadata["params"], name=inst.name)
    assert again.content_hash() == inst.content_hash()


def test_small_covers_k_and_n_and_stays_within_the_binary_budget():
    Ks, Ns = set(), set()
    for f in _committed("small"):
        if f.suffix != ".json":
            continue
        inst = read_instance(f)
        K = inst.max_top_k
        Ks.add(K)
        Ns.add(inst.N)
        assert inst.N * inst.L * inst.max_experts <= {1: 120, 2: 64, 4: 40}[K]
        assert 2 <= inst.U <= 4
    assert Ks == {1, 2, 4} and Ns == {2, 3, 4, 5, 6}


def test_mixed_precision_sizes_differ_across_layers_with_gcd_one():
    for f in _committed("tiny") + _committed("small") + [ROOT / "mixed-precision" / "mixed-switch-base-8-wifi-rtx.json"]:
        if not f.name.endswith(".json"):
            continue
        inst = read_instance(f)
        if inst.metadata["params"]["precision"] != "mixed":
            continue
        assert inst.size_unit == "KiB"
        assert len(set(inst.expert_size.tolist())) > 1
        assert math.gcd(*inst.expert_size.tolist()) == 1
        bits = inst.metadata["precision"]["bits_per_weight"]
        params = inst.metadata["architecture"]["expert_params"]
        extra = inst.metadata["precision"]["last_layer_header_kib"]
        for l, b in enumerate(bits):
            expect = math.ceil(params * b / 8 / 1024 - 1e-9) + (extra if l == inst.L - 1 else 0)
            assert inst.expert_size[l] == pytest.approx(expect, abs=1)


def test_paper_suite_has_real_architecture_scale():
    index = {r["model"]: r for r in csv.DictReader(open(ROOT / "paper" / "index.csv"))}
    for model in ("Mixtral-8x7B", "DeepSeek-V2-Lite", "Qwen1.5-MoE-A2.7B", "OLMoE-1B-7B", "Switch-Base-8",
                  "DeepSeek-V3"):
        assert model in index
    v3 = index["DeepSeek-V3"]
    assert (v3["L"], v3["E"], v3["K"], v3["N"], v3["U"]) == ("58", "256", "8", "8", "4")
    assert int(v3["sets"]) == 4 * 58 * 512
    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert total < 60 * 2**20
    with gzip.open(ROOT / "paper" / v3["file"], "rb") as fh:
        assert fh.read(40).startswith(b'{\n "format": "slimcaching-instance/1"')


@pytest.mark.parametrize("value,expected", [
    ("0.25", {"fraction": 0.25}), ("25%", {"fraction": 0.25}), ("1008", {"units": 1008}),
    ("24GiB", {"bytes": 24 * 2**30}), ("0", {"units": 0}), ("512 MiB", {"bytes": 512 * 2**20}), (None, None), ([3, 4], [3, 4]),
    (0.5, {"fraction": 0.5})])
def test_capacity_forms(value, expected):
    assert parse_capacity(value) == expected


@pytest.mark.parametrize("value", ["2x", "1.5", "-3", "150%", "0GiB", "0.0"])
def test_bad_capacity_is_an_input_error(value):
    with pytest.raises(InputError, match=r"--capacity: expected a fraction in \(0, 1\] such as 0.25 or 25%"):
        parse_capacity(value)


def test_capacity_meaning_in_generated_instances():
    kw = dict(network="wifi-rtx", nodes=2, users=1, layers=2, seed=0)
    frac = model_instance("Mixtral-8x7B", capacity="25%", **kw)
    assert frac.capacity.tolist() == [int(0.25 * 2 * 8 * 336)] * 2
    units = model_instance("Mixtral-8x7B", capacity="1008", **kw)
    assert units.capacity.tolist() == [1008, 1008]
    gib = model_instance("Mixtral-8x7B", capacity="1GiB", **kw)
    assert gib.capacity.tolist() == [1024, 1024]
    dev = model_instance("Mixtral-8x7B", capacity="1008", device_capacity="672", devices=True, **kw)
    assert dev.capacity.tolist() == [1008, 1008, 672]
    with pytest.raises(InputError, match=r"--capacity: a capacity list needs one value per node \(2\), got 1"):
        model_instance("Mixtral-8x7B", capacity=[5], **kw)
    with pytest.raises(InputError, match=r"--seed: seed must be a non-negative integer, got -1"):
        model_instance("Mixtral-8x7B", **{**kw, "seed": -1})
    with pytest.raises(InputError, match=r"--precision: unknown precision 'fp8'; valid: bf16, fp16, int8, int4, mixed"):
        model_instance("Mixtral-8x7B", precision="fp8", **kw)


def test_generation_is_seeded():
    a = model_instance("OLMoE-1B-7B", layers=2, nodes=2, users=2, seed=9, tokens=64).to_dict()
    b = model_instance("OLMoE-1B-7B", layers=2, nodes=2, users=2, seed=9, tokens=64).to_dict()
    c = model_instance("OLMoE-1B-7B", layers=2, nodes=2, users=2, seed=10, tokens=64).to_dict()
    assert a == b and a != c
    assert a["metadata"]["sampled_tokens_per_distribution"] == [[64, 64], [64, 64]]


def test_suite_command(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "list"]) == 0
    out = capsys.readouterr().out
    for s in SUITES:
        assert s in out
    assert main(["suite", "generate", "tiny", "--out", str(tmp_path / "t")]) == 0
    assert (tmp_path / "t" / "tiny-000.json").read_bytes() == (ROOT / "tiny" / "tiny-000.json").read_bytes()
    assert main(["suite", "generate", "huge"]) == 2
    assert not (tmp_path / "instances").exists()
    assert capsys.readouterr().err.strip() == ("suite: unknown suite 'huge'; valid: tiny, small, paper, "
                                               "mixed-precision")
    assert main(["suite", "generate"]) == 2
