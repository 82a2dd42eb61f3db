"""Token replay (the replay identity, online caches against a reference simulation),
fit/test splits, the generalisation gap, truncation bounds and instance files."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from slimcaching.algorithms.baselines import popularity
from slimcaching.algorithms.registry import run
from slimcaching.analysis.heldout import generalisation_gap
from slimcaching.analysis.simulate import sample_stream, simulate, trace_stream
from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, write_instance
from slimcaching.instances.serial import dumps_instance
from slimcaching.instances.suites import model_instance
from slimcaching.instances.traces import (count_trace, instances_from_counts, open_source, parse_split, sample_trace,
                                          truncate, write_trace)
from slimcaching.objective import latency


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory):
    """A 3-user Mixtral trace (4 layers) with unequal tokens per user, as a list-format CSV."""
    src = model_instance("Mixtral-8x7B", network="wifi-rtx", nodes=3, users=3, layers=4, seed=3, topics=2)
    df = sample_trace(src, [120, 60, 30], np.random.default_rng(1))
    path = tmp_path_factory.mktemp("t") / "trace.csv"
    write_trace(df, path)
    return path


def _instance(path, **kw):
    src = open_source(path)
    counts = count_trace(src, layers=32, experts=8, top_k=2, model="Mixtral-8x7B", **kw)
    return counts, instances_from_counts(counts, model="mixtral-8x7b", nodes=3, capacity=0.05, seed=2)


def test_replaying_the_trace_an_instance_was_built_from_gives_T(trace_file):
    _, (inst,) = _instance(trace_file)
    stream = trace_stream(inst, str(trace_file))
    assert len(stream.user) == 210
    for algo in ("cloud", "popularity", "best"):
        x = run(inst, algo, seed=0).placement
        out = simulate(inst, x, stream=stream, policies=())
        assert out["placement"]["mean"] == pytest.approx(latency(inst, x), rel=1e-12, abs=0)
        assert sum(out["placement"]["requests"].values()) == int((stream.sets >= 0).sum())


def test_sampled_replay_converges_to_T(trace_file):
    _, (inst,) = _instance(trace_file)
    x = run(inst, "best", seed=0).placement
    out = simulate(inst, x, stream=sample_stream(inst, 3000, seed=4), policies=())
    assert out["placement"]["mean"] == pytest.approx(latency(inst, x), rel=0.02)


def _reference(inst, stream, policy, penalty):
    """Per-request reference: caches as plain lists, scanned in full."""
    N, L = inst.N, inst.L
    caches = [[] for _ in range(N)]                 # LRU: list of keys, most recent last
    meta = [dict() for _ in range(N)]               # LFU: key -> [calls, last time]
    clock = 0
    rows, served, misses = np.zeros(stream.sets.shape[:2]), [], 0
    for i in range(len(stream.user)):
        u = int(stream.user[i])
        for l in range(L):
            worst, todo = 0.0, []
            for e in stream.sets[i, l]:
                if e < 0:
                    continue
                key = (l, int(e))
                holders = [n for n in range(N) if np.isfinite(inst.latency[u, n, l]) and key in caches[n]]
                if holders:
                    n = min(holders, key=lambda n: (inst.latency[u, n, l], n))
                    clock += 1
                    if policy == "lru":
                        caches[n].remove(key)
                        caches[n].append(key)
                    else:
                        meta[n][key] = [meta[n][key][0] + 1, clock]
                    v = min(inst.latency[u, n, l], inst.cloud_latency[u, l])
                    served.append(n if inst.latency[u, n, l] <= inst.cloud_latency[u, l] else N)
                else:
                    v = inst.cloud_latency[u, l] + penalty
                    misses += 1
                    served.append(N)
                    reach = [n for n in range(N) if np.isfinite(inst.latency[u, n, l])]
                    if reach:
                        todo.append((min(reach, key=lambda n: (inst.latency[u, n, l], n)), key))
                worst = max(worst, v)
            rows[i, l] = worst
            for n, key in todo:
                size = inst.expert_size[key[0]]
                if size > inst.capacity[n] or key in caches[n]:
                    continue
                while sum(inst.expert_size[k[0]] for k in caches[n]) + size > inst.capacity[n]:
                    if policy == "lru":
                        caches[n].pop(0)
                    else:
                        victim = min(caches[n], key=lambda k: tuple(meta[n][k]))
                        caches[n].remove(victim)
                        del meta[n][victim]
                caches[n].append(key)
                clock += 1
                meta[n][key] = [1, clock]
    return rows, np.bincount(served, minlength=N + 1), misses


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("policy", ["lru", "lfu"])
def test_online_caches_match_a_reference_simulation(seed, policy):
    inst = random_instance(layers=2, experts=5, top_k=2, nodes=3, users=2, seed=seed, capacity_fraction=0.3)
    stream = sample_stream(inst, 40, seed)
    out = simulate(inst, inst.empty_placement(), stream=stream, policies=(policy,), miss_penalty=0.01)[policy]
    rows, served, misses = _reference(inst, stream, policy, 0.01)
    assert out["mean"] == pytest.approx(float((rows * stream.weight).sum()), rel=1e-12)
    assert out["max"] == pytest.approx(rows.sum(axis=1).max(), rel=1e-12)
    assert out["misses"] == misses
    assert list(out["requests"].values()) == served.tolist()


def test_static_popularity_cache_is_the_popularity_placement(trace_file):
    _, (inst,) = _instance(trace_file)
    stream = trace_stream(inst, str(trace_file))
    out = simulate(inst, inst.empty_placement(), stream=stream, policies=("popularity",))
    assert out["popularity"]["mean"] == pytest.approx(latency(inst, popularity(inst).placement), rel=1e-12)
    assert out["placement"]["hit_rate"] == 0.0 and out["placement"]["requests"]["cloud"] > 0


def test_simulate_command(trace_file, tmp_path, capsys):
    _, (inst,) = _instance(trace_file)
    write_instance(inst, tmp_path / "i.json")
    from slimcaching.instances.io import write_placement

    write_placement(inst, run(inst, "best", seed=0).placement, tmp_path / "p.json")
    assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--trace", str(trace_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["run", "placement", "lru", "lfu", "popularity"]
    assert set(out["lru"]) >= {"mean", "p50", "p95", "p99", "max", "requests"}
    assert main(["simulate", str(tmp_path / "i.json"), str(tmp_path / "p.json"), "--policies", "fifo"]) == 2


# ------------------------------------------------------------------ splits
@pytest.mark.parametrize("by", ["time", "user"])
def test_split_is_disjoint_and_covers_every_token(trace_file, by):
    full, _ = _instance(trace_file)
    sp = parse_split("70:30", by, seed=5)
    parts = count_trace(open_source(trace_file), layers=32, experts=8, top_k=2, split=sp)
    assert parts.parts == ("fit", "test")
    assert np.array_equal(parts.tokens.sum(axis=0), full.tokens[0])
    for u in range(len(parts.user_names)):
        for i in range(len(parts.layers)):
            merged = {}
            for p in (0, 1):
                k = parts.index(p, u, i)
                for s, c in zip(map(tuple, parts.sets[k]), parts.counts[k]):
                    merged[s] = merged.get(s, 0) + int(c)
            k0 = full.index(0, u, i)
            assert merged == {tuple(s): int(c) for s, c in zip(full.sets[k0], full.counts[k0])}
    tok = parts.tokens[:, :, 0]
    if by == "user":
        assert ((tok[0] > 0) != (tok[1] > 0)).all()          # every user in exactly one part
    else:
        assert (tok > 0).all()
        assert np.allclose(tok[0] / tok.sum(axis=0), 0.7, atol=0.02)


def test_fit_and_test_share_the_network_and_give_a_gap(trace_file, tmp_path):
    fit_p, test_p = tmp_path / "fit.json", tmp_path / "test.json"
    assert main(["from-trace", str(trace_file), "--model", "mixtral-8x7b", "--nodes", "3", "--capacity", "0.05",
                 "--split", "80:20", "--split-by", "time", "-o", str(fit_p), "--test-output", str(test_p)]) == 0
    fit, test = read_instance(fit_p), read_instance(test_p)
    assert fit.metadata["split"]["part"] == "fit" and test.metadata["split"]["part"] == "test"
    assert np.array_equal(fit.latency, test.latency) and fit.node_names == test.node_names
    rows = generalisation_gap(fit, test, ["popularity", "best"], seed=0)
    for r in rows:
        assert r["gap"] == pytest.approx(r["test_latency"] - r["fit_latency"])
        assert r["test_latency"] == pytest.approx(latency(test, run(fit, r["algorithm"], seed=0).placement))
    other = random_instance(layers=4, experts=8, top_k=2, nodes=3, users=2, seed=1)
    with pytest.raises(InputError, match="not over the same network"):
        generalisation_gap(fit, other, ["cloud"])


# ------------------------------------------------------------------ truncation
@pytest.mark.parametrize("tail", ["independent", "drop"])
def test_truncation_moves_the_tail_and_bounds_the_error(trace_file, tail):
    full, (inst,) = _instance(trace_file)
    cut, record = truncate(full, min_count=2, top_mass=0.8, tail=tail)
    (tinst,) = instances_from_counts(cut, model="mixtral-8x7b", nodes=3, capacity=0.05, seed=2,
                                     extra={"truncation": record})
    bound = tinst.metadata["truncation"]["latency_error_bound"]
    assert bound > 0 and tinst.n_sets < inst.n_sets
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.random((inst.N, inst.L, inst.max_experts)) < 0.2
        d = latency(inst, x) - latency(tinst, x)
        assert abs(d) <= bound + 1e-12
        if tail == "independent":
            assert d >= -1e-12


def test_degenerate_trace_warns(trace_file, tmp_path, capsys):
    assert main(["from-trace", str(trace_file), "--model", "mixtral-8x7b", "-o", str(tmp_path / "x.json")]) == 0
    err = capsys.readouterr().err
    assert "tokens per distinct set" in err
    meta = read_instance(tmp_path / "x.json").metadata["trace"]
    assert meta["tokens_per_distinct_set"] < 5
    assert main(["from-trace", str(trace_file), "--model", "mixtral-8x7b", "--max-sets", "10",
                 "-o", str(tmp_path / "x.json")]) == 2


# ------------------------------------------------------------------ instance files
def test_json_text_is_byte_identical_and_npz_round_trips(trace_file, tmp_path):
    _, (inst,) = _instance(trace_file)
    inst.metadata["note"] = "ünïcode ✓"
    for i in (inst, random_instance(layers=3, experts=5, top_k=3, nodes=2, users=3, seed=7)):
        assert dumps_instance(i) == json.dumps(i.to_dict(), indent=1, ensure_ascii=False) + "\n"
    write_instance(inst, tmp_path / "i.json.gz")
    assert gzip.open(tmp_path / "i.json.gz").read().decode() == dumps_instance(inst)
    write_instance(inst, tmp_path / "i.npz")
    back = read_instance(tmp_path / "i.npz")
    assert back.content_hash() == inst.content_hash() and back.metadata == inst.metadata
    x = run(inst, "best", seed=0).placement
    assert latency(back, x) == latency(inst, x)


def test_npz_instances_are_validated(trace_file, tmp_path):
    _, (inst,) = _instance(trace_file)
    write_instance(inst, tmp_path / "i.npz")
    with np.load(tmp_path / "i.npz") as z:
        arrays = {k: z[k] for k in z.files}
    bad = dict(arrays, set_prob=arrays["set_prob"] * 1.5)
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(InputError, match=r"bad.npz: \$\.users\[0\]\.routing\[0\]: probabilities must sum to 1"):
        read_instance(tmp_path / "bad.npz")
    se = arrays["set_experts"].copy()
    se[0, 0] = 99
    np.savez(tmp_path / "bad2.npz", **dict(arrays, set_experts=se))
    with pytest.raises(InputError, match=r"\$\.set_experts\[0\]: expert id out of range"):
        read_instance(tmp_path / "bad2.npz")
