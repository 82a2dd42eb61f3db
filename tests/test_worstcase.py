"""Worst-case search: finds planted bad behaviour, certificates check out, seeded."""
from __future__ import annotations

import numpy as np
import pytest

from slimcaching.algorithms import REGISTRY
from slimcaching.analysis.worstcase import WORSTCASE_FORMAT, _mutate, _random_genome, worst_case, write_worst_case
from slimcaching.instances.io import read_instance, read_json
from slimcaching.instances.model import Placement
from slimcaching.instances.validate import instance_from_dict
from slimcaching.objective import evaluate
from slimcaching.result import make_result


def half_cloud(instance, *, seed=None, time_limit=None, **params):
    """Caches only on node 0 and only layer 0's expert 0: often far from optimal."""
    x = np.zeros((instance.N, instance.L, instance.max_experts), dtype=bool)
    if instance.capacity[0] >= instance.expert_size[0]:
        x[0, 0, 0] = True
    return make_result(instance, Placement(x), algorithm="half-cloud", status="heuristic", runtime_s=0.0, seed=seed)


@pytest.mark.parametrize("k", [1, 2])
def test_genomes_are_valid_instances(k):
    rng = np.random.default_rng(k)
    g = _random_genome(rng, k, 2, 4, 2, 2, 2)
    for _ in range(30):
        g = _mutate(g, rng, 2)
        inst = g.to_instance()
        back = instance_from_dict(inst.to_dict())  # passes every validation rule
        assert back.content_hash() == inst.content_hash()
        assert inst.max_set_size <= k and (inst.capacity >= 0).all()


def test_search_finds_planted_weakness_and_certificate_checks_out(tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "half-cloud", f"{__name__}:half_cloud")
    wc = worst_case("half-cloud", top_k=2, evals=60, seed=3)
    assert wc.ratio < 0.2 and wc.history[-1][1] == wc.ratio
    assert all(b >= a for (_, a), (_, b) in zip(wc.history[1:], wc.history[:-1]))  # best so far never rises
    doc = write_worst_case(wc, tmp_path / "w.json")
    assert doc["format"] == WORSTCASE_FORMAT
    inst = read_instance(tmp_path / "w.instance.json")
    assert inst.content_hash() == wc.instance.content_hash()
    ea = evaluate(inst, Placement.from_cache(inst, doc["algorithm_placement"]["cache"]))
    eo = evaluate(inst, Placement.from_cache(inst, doc["optimal_placement"]["cache"]))
    assert ea.feasible and eo.feasible and eo.reduction > 0
    assert ea.reduction / eo.reduction == pytest.approx(doc["ratio"]) == pytest.approx(wc.ratio)
    assert read_json(tmp_path / "w.json")["history"][-1][1] == pytest.approx(wc.ratio)


def test_exact_against_itself_has_ratio_one():
    wc = worst_case("brute-force", top_k=2, evals=15, seed=0)
    assert wc.ratio == pytest.approx(1.0)


def test_seeded_search_is_reproducible():
    a = worst_case("successive", top_k=2, evals=20, seed=5)
    b = worst_case("successive", top_k=2, evals=20, seed=5)
    assert a.ratio == b.ratio and a.history == b.history
    assert a.instance.content_hash() == b.instance.content_hash()
    assert 0.0 <= a.ratio <= 1.0 + 1e-12


def test_cli_worst_case(tmp_path, capsys):
    from slimcaching.cli import main

    out = tmp_path / "g.json"
    assert main(["worst-case", "--algorithm", "greedy", "--top-k", "1", "--evals", "10", "--seed", "1",
                 "--no-progress", "-o", str(out)]) == 0
    assert out.exists() and (tmp_path / "g.instance.json").exists()
    assert '"ratio"' in capsys.readouterr().out
    assert main(["worst-case", "--algorithm", "nope", "--evals", "1"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------ issue 18: the search's time limit is kept
@pytest.mark.parametrize("seed", range(6))
def test_placement_count_bound_bounds_brute_force(seed):
    from slimcaching.algorithms.bruteforce import maximal_node_caches
    from slimcaching.analysis.worstcase import BRUTE_FORCE_BUDGET, placement_count_bound

    rng = np.random.default_rng(seed)
    g = _random_genome(rng, 2, 3, 5, 3, 2, 3)
    for _ in range(10):
        g = _mutate(g, rng, 3)
        inst = g.to_instance()
        enumerated = int(np.prod([len(maximal_node_caches(inst, n)) for n in range(inst.N)]))
        assert min(enumerated, BRUTE_FORCE_BUDGET + 1) <= placement_count_bound(inst)


def test_brute_force_reference_too_large_is_skipped_not_started(monkeypatch):
    import slimcaching.analysis.worstcase as wcmod

    calls = []
    monkeypatch.setattr(wcmod, "BRUTE_FORCE_BUDGET", 0)
    monkeypatch.setitem(REGISTRY, "half-cloud", f"{__name__}:half_cloud")
    import slimcaching.algorithms as algs

    real_run = algs.run
    monkeypatch.setattr(algs, "run", lambda inst, name, **kw: calls.append(name) or real_run(inst, name, **kw))
    wc = worst_case("half-cloud", top_k=2, evals=5, seed=0)
    assert wc.instance is None and wc.skipped == 5 and "brute-force" not in calls


def test_time_limit_holds_with_a_brute_force_reference():
    """Seed 2 of this class kept running past 120 s with --time-limit 5 (brute force enumerated
    every maximal cache before looking at any clock)."""
    wc = worst_case("greedy", top_k=2, evals=20, seed=2, max_experts=16, max_layers=4, max_nodes=4, max_size=1,
                    time_limit=3.0)
    assert wc.runtime_s <= 3.0 * 1.05 + 2.0
    assert wc.skipped >= 1
