"""One generic test over every registered algorithm: feasible, reported latency = evaluator's."""
from __future__ import annotations

import numpy as np
import pytest

from slimcaching.algorithms import REGISTRY, run
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.objective import empty_latency, latency
from slimcaching.result import Status

ALLOWED = {Status.OPTIMAL, Status.FEASIBLE, Status.HEURISTIC}  # no time limit is given here


def _instances(count: int, *, tiny: bool = False) -> list:
    """Seeded random instances with varied top-k, nodes, users, sizes and capacities."""
    rng = np.random.default_rng(20260 if not tiny else 777)
    out = []
    for i in range(count):
        L = int(rng.integers(1, 3 if tiny else 5))
        E = int(rng.integers(2, 4 if tiny else 7))
        K = int(rng.integers(1, min(3, E) + 1))
        N = int(rng.integers(1, 3 if tiny else 5))
        sizes = rng.integers(1, 4, size=L).tolist() if rng.random() < 0.5 else 1
        out.append(random_instance(layers=L, experts=E, top_k=K, nodes=N, users=int(rng.integers(1, 4)),
                                   seed=i, expert_size=sizes,
                                   capacity_fraction=float(rng.uniform(0.1, 0.3 if tiny else 0.5)),
                                   skew=float(rng.uniform(0.0, 1.5)), reach=float(rng.uniform(0.4, 1.0))))
    return out


INSTANCES = _instances(200)
TINY = _instances(6, tiny=True)


def _check(inst, res, seed):
    assert res.feasible and res.placement.is_feasible(inst)
    assert res.placement.x.shape == (inst.N, inst.L, inst.max_experts)
    assert not np.any(res.placement.x & ~inst.valid_mask()[None])
    assert res.latency == pytest.approx(latency(inst, res.placement), abs=1e-9)
    assert res.empty_latency == pytest.approx(empty_latency(inst), abs=1e-12)
    assert res.reduction == pytest.approx(res.empty_latency - res.latency, abs=1e-12)
    assert res.reduction >= -1e-12
    assert res.status in ALLOWED
    assert res.seed == seed


#: Algorithms that solve MILPs per instance: the fast suite runs them on the first
#: FEW_INSTANCES instances, the slow suite on all of them.
MILP_BASED = ("decompose", "lns")
FEW_INSTANCES = 12  # lns alone took 97 s on the first 25 (two L=4 instances: 24 s and 54 s)


@pytest.mark.parametrize("name", [n for n in REGISTRY if n not in ("exact", "brute-force")])
def test_every_algorithm_is_feasible_and_reports_the_evaluators_latency(name):
    for i, inst in enumerate(INSTANCES[:FEW_INSTANCES] if name in MILP_BASED else INSTANCES):
        _check(inst, run(inst, name, seed=i), i)


@pytest.mark.slow
@pytest.mark.parametrize("name", MILP_BASED)
def test_milp_based_algorithms_on_every_instance(name):
    for i, inst in enumerate(INSTANCES[FEW_INSTANCES:], start=FEW_INSTANCES):
        _check(inst, run(inst, name, seed=i), i)


@pytest.mark.parametrize("name", ["exact", "brute-force"])
def test_exact_references_on_tiny_instances(name):
    for i, inst in enumerate(TINY):
        res = run(inst, name, seed=i)
        _check(inst, res, i)
        assert res.status == Status.OPTIMAL


def test_exact_references_agree_and_bound_every_heuristic():
    for i, inst in enumerate(TINY[:4]):
        opt = run(inst, "brute-force").latency
        assert run(inst, "exact").latency == pytest.approx(opt, abs=1e-9)
        for name in REGISTRY:
            if name not in ("exact", "brute-force"):
                assert run(inst, name, seed=i).latency >= opt - 1e-9, name


@pytest.mark.parametrize("name", ["cloud", "random", "popularity", "successive"])
def test_polish_flag_never_worse(name):
    for i, inst in enumerate(INSTANCES[:10]):
        base = run(inst, name, seed=i)
        res = run(inst, name, seed=i, polish=True)
        _check(inst, res, i)
        assert res.algorithm == f"{name}+polish"
        assert res.latency <= base.latency + 1e-12
        assert res.info["start_latency"] == pytest.approx(base.latency, abs=1e-12)


def test_unknown_algorithm_lists_the_valid_ones():
    with pytest.raises(InputError, match=r"unknown algorithm 'fastest'; valid: cloud, random"):
        run(INSTANCES[0], "fastest")
