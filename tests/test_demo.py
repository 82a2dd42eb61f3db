"""The demo: its own runs only, and proofs decided by a work limit, not by the machine's load."""
from __future__ import annotations

import multiprocessing as mp
import time
from contextlib import contextmanager

import pandas as pd
import pytest

from slimcaching.analysis.demo import demo, demo_specs, node_limit_supported
from slimcaching.analysis.store import ResultStore
from slimcaching.analysis.sweeps import sweep
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import write_instance

needs_node_limit = pytest.mark.skipif(
    not node_limit_supported(),
    reason="slimcaching.formulations.solve.exact does not accept node_limit yet (the deterministic work limit "
           "of issue 12, added on the solver branch)")


def _suite(folder, cases):
    for seed, cf in cases:
        inst = random_instance(layers=3, experts=6, top_k=2, nodes=3, users=3, seed=seed, capacity_fraction=cf)
        write_instance(inst, folder / f"g-{seed}-{cf}.json")
    return folder


def test_demo_specs_pass_the_work_limit_to_every_exact_run():
    s = demo_specs(500)
    assert s["exact"] == "exact[node_limit=500]"
    assert s["formulations"].endswith("exact[formulation=assignment,node_limit=500]")
    assert "exact" not in s["heuristics"].split(",") and "brute-force" not in s["heuristics"].split(",")
    assert demo_specs(None)["exact"] == "exact"


def test_demo_ignores_stored_runs_of_other_settings(tmp_path):
    """A wall-clock-only or other-limit exact row already in the store must not become a reference."""
    suite = _suite(tmp_path / "g", [(3, 0.15)])
    out = tmp_path / "out"
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=3, users=3, seed=3, capacity_fraction=0.15)
    with ResultStore(out / "results.sqlite") as st:
        st.put({"instance_hash": inst.content_hash(), "algorithm": "exact", "params": {"node_limit": 99},
                "seed": 0, "family": "caching", "instance_path": str(suite / "g-3-0.15.json"), "status": "optimal",
                "gain": 1e3, "gain_upper": 1e3, "latency": 0.0, "empty_latency": 1e3, "feasible": True})
    lines: list[str] = []
    files = demo(out, suites=[str(suite)], jobs=1, node_limit=50, progress=False, log=lines.append)
    assert any("left out 1 stored run(s) of other algorithms or settings" in ln for ln in lines)
    proofs = pd.read_csv(files["proofs_csv"])
    assert "node_limit=99" not in str(proofs["source"].iloc[0]) and proofs["consistent"].all()
    if not node_limit_supported():
        assert any("has no node_limit" in ln for ln in lines)


def test_demo_on_a_small_folder_writes_every_output(tmp_path):
    sweep("capacity_fraction", [0.25, 0.5], out_dir=tmp_path / "mini", seeds=[0],
          base={"layers": 1, "experts": 3, "top_k": 2, "nodes": 2, "users": 2})
    lines = []
    files = demo(tmp_path / "out", suites=[str(tmp_path / "mini")], jobs=1, node_limit=1000, exact_time_limit=30,
                 progress=False, log=lines.append)
    for key in ("ratio_md", "ratio_tex", "ratio_csv", "proofs_md", "proofs_csv", "formulations_md",
                "formulations_tex", "guarantees_md"):
        assert files[key].exists() and files[key].stat().st_size > 0
    text = "\n".join(lines)
    assert "left out: brute-force" in text and "mini: 2 of 2 instances proven optimal" in text
    assert "| mini | exact | 2 | 2 | 2 | 1.0000 | 1.0000 | 1.0000 | 1.0000 | 0 |" in text
    assert (tmp_path / "out" / "figures" / "ratio_ecdf_caching.pdf").exists()
    tex = files["ratio_tex"].read_text()
    assert r"\bottomrule" in tex and r"\label{tab:ratios}" in tex
    proofs = pd.read_csv(files["proofs_csv"])
    assert list(proofs["reference"]) == ["optimum", "optimum"] and proofs["consistent"].all()


def _spin() -> None:  # a busy loop that competes for the CPU
    while True:
        pass


@contextmanager
def busy_cpu(n: int):
    procs = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for p in procs:
        p.start()
    try:
        yield procs
    finally:
        for p in procs:
            p.terminate()
            p.join(5)


def _tables(out, suite, lines):
    files = demo(out, suites=[str(suite)], jobs=2, node_limit=1, exact_time_limit=600, time_limit=600,
                 progress=False, log=lines.append)
    proofs = pd.read_csv(files["proofs_csv"])
    ratios = pd.read_csv(files["ratio_csv"]).drop(columns=["median_runtime_s"])
    return proofs, ratios


@pytest.mark.slow
@needs_node_limit
def test_same_work_limit_same_proofs_and_table_on_a_loaded_machine(tmp_path):
    # two instances HiGHS closes at the root node, two it needs to branch on (measured)
    suite = _suite(tmp_path / "g", [(0, 0.3), (2, 0.3), (3, 0.15), (4, 0.15)])
    quiet: list[str] = []
    t0 = time.perf_counter()
    p1, r1 = _tables(tmp_path / "a", suite, quiet)
    t_quiet = time.perf_counter() - t0
    loaded: list[str] = []
    with busy_cpu(2 * mp.cpu_count()) as procs:
        t0 = time.perf_counter()
        p2, r2 = _tables(tmp_path / "b", suite, loaded)
        t_loaded = time.perf_counter() - t0
        assert all(p.is_alive() for p in procs), "the busy loop stopped before the second demo finished"
    # the limit decided something: some instances proven, some with a bound only, nothing cut by a clock
    assert set(p1["reference"]) == {"optimum", "bound"}
    assert (p1["wall_stopped"] == 0).all() and (p2["wall_stopped"] == 0).all()
    assert set(p1.loc[p1["reference"] == "bound", "exact_stop"]) <= {"work limit", "work limit; work limit"}
    pd.testing.assert_frame_equal(p1, p2, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(r1, r2, check_exact=False, rtol=1e-12)
    assert not any("wall clock" in ln for ln in quiet + loaded)
    print(f"demo on 4 instances: {t_quiet:.1f} s, under {2 * mp.cpu_count()} busy loops {t_loaded:.1f} s")
