"""Round trips of the file formats are exact, plain and gzipped."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from reference import random_instance_dict
from slimcaching.cli import main
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, read_placement, write_instance, write_placement
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import latency


def _same(a, b):
    for f in ("experts", "expert_size", "top_k", "capacity", "weight", "latency", "cloud_latency",
              "set_experts", "set_prob", "set_user", "set_layer", "offsets"):
        assert np.array_equal(getattr(a, f), getattr(b, f)), f
    assert a.node_names == b.node_names and a.user_names == b.user_names and a.name == b.name
    assert a.metadata == b.metadata


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), gz=st.booleans())
def test_instance_round_trip(tmp_path_factory, seed, gz):
    inst = instance_from_dict(random_instance_dict(seed))
    f = tmp_path_factory.mktemp("rt") / ("i.json.gz" if gz else "i.json")
    write_instance(inst, f)
    back = read_instance(f)
    _same(inst, back)
    assert back.content_hash() == inst.content_hash()
    rng = np.random.default_rng(seed)
    x = (rng.random((inst.N, inst.L, inst.max_experts)) < 0.4) & inst.valid_mask()[None]
    p = tmp_path_factory.mktemp("rt") / ("p.json.gz" if gz else "p.json")
    write_placement(inst, Placement(x), p, latency=latency(inst, x))
    pl, extra = read_placement(p, inst)
    assert np.array_equal(pl.x, x)
    assert extra["latency"] == latency(inst, x)


def test_generated_instance_round_trip_and_gzip_is_reproducible(tmp_path):
    inst = random_instance(layers=3, experts=32, top_k=4, nodes=2, users=2, seed=5, tokens=500)
    assert inst.metadata["sampled_tokens_per_distribution"] == 500
    a, b = tmp_path / "a.json.gz", tmp_path / "b.json.gz"
    write_instance(inst, a)
    write_instance(read_instance(a), b)
    assert a.read_bytes() == b.read_bytes()
    _same(inst, read_instance(b))


def test_hash_ignores_name_and_metadata():
    d = random_instance_dict(3)
    a = instance_from_dict(d)
    d2 = dict(d, name="other", metadata={"x": 1})
    assert instance_from_dict(d2).content_hash() == a.content_hash()
    d3 = json.loads(json.dumps(d))
    d3["nodes"][0]["capacity"] += 1
    assert instance_from_dict(d3).content_hash() != a.content_hash()


def test_cli_generate_is_seeded(tmp_path, capsys):
    a, b, c = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for f, seed in ((a, 1), (b, 1), (c, 2)):
        assert main(["generate", "--layers", "2", "--experts", "6", "--top-k", "2", "--nodes", "2",
                     "--users", "2", "--seed", str(seed), "-o", str(f)]) == 0
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    inst = read_instance(a)
    assert inst.L == 2 and inst.N == 2 and inst.U == 2 and inst.max_top_k == 2
    # exact Plackett-Luce enumeration for C(6,2) sets: every set has size top-k
    assert np.all(inst.set_sizes == 2)
    assert inst.metadata["params"]["seed"] == 1


def test_plackett_luce_exact_matches_sampling():
    from slimcaching.instances.routing import plackett_luce_exact, plackett_luce_sampled

    pop = np.array([0.4, 0.3, 0.2, 0.1])
    sets, p = plackett_luce_exact(pop, 2)
    assert p.sum() == pytest.approx(1.0)
    # P({0,1}) = .4*.3/.6 + .3*.4/.7
    i = [tuple(s) for s in sets].index((0, 1))
    assert p[i] == pytest.approx(0.4 * 0.3 / 0.6 + 0.3 * 0.4 / 0.7)
    s2, p2, counts = plackett_luce_sampled(pop, 2, 200_000, np.random.default_rng(0))
    emp = dict(zip(map(tuple, s2), p2))
    for s, q in zip(map(tuple, sets), p):
        assert emp.get(s, 0.0) == pytest.approx(q, abs=4 * np.sqrt(q * (1 - q) / 200_000) + 1e-9)
