"""The paper-suite table (``benchmarks/perf_paper_table.py``): its ratios are the definition's, checked
against brute-force optima, and imported certificates are checked before they can certify anything."""
from __future__ import annotations

import json

import pytest

from slimcaching.algorithms import run
from slimcaching.algorithms.certify import certify
from slimcaching.analysis.certified import certified_table, import_certificates
from slimcaching.analysis.report import format_table, load_frame, with_ratios
from slimcaching.analysis.runner import run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.errors import InputError
from slimcaching.formulations.solve import lp_bound
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, write_instance
from slimcaching.objective import empty_latency, latency

ALGS = ["best", "successive", "greedy", "popularity", "cloud"]


def _record(inst, path, *, bound=None):
    """A ``certify`` record of ``inst`` (written to ``path``), optionally with another bound."""
    c = certify(inst, time_limit=20, seed=0).to_dict(inst)
    c["file"] = str(path)
    if bound is not None:
        c["bound"], c["bound_method"] = bound, "level LP (plain)"
        c["bounds"] = [*c["bounds"], {"method": "level LP (plain)", "value": bound, "time_s": 0.0}]
        c["gap"], c["status"] = (c["latency"] - bound) / c["latency"], "gap"
    return c


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """Two tiny instances (brute force is cheap), the heuristics and brute force swept, seed 0.

    ``certified.jsonl`` holds a certificate of ``i0`` whose bound is the *plain* level LP bound
    (valid, below the optimum), so ``i0``'s ratios are certified; ``i1``'s certificate keeps
    certify's own bound, which meets its latency, so ``i1`` has a proven optimum.
    """
    d = tmp_path_factory.mktemp("paper_table")
    insts, files = [], []
    for s in (0, 1):
        inst = random_instance(layers=2, experts=3, top_k=2, nodes=2, users=2, seed=10 + s, capacity_fraction=0.35)
        f = d / "suite" / f"i{s}.json"
        write_instance(inst, f)
        insts.append(read_instance(f))
        files.append(f)
    db = d / "r.sqlite"
    run_sweep([d / "suite"], ",".join(ALGS), db=db, seeds=[0], progress=False)
    lp = lp_bound(insts[0], "level")
    recs = [_record(insts[0], files[0], bound=lp), _record(insts[1], files[1])]
    rec = d / "certified.jsonl"
    rec.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert import_certificates(str(db), rec) == 2
    return d, db, insts, files, recs


def _opt(inst) -> float:
    res = run(inst, "brute-force")
    assert str(res.status) == "optimal"
    return res.latency


def test_certified_ratios_are_r_over_t_empty_minus_bound_and_below_the_exact_ratio(suite):
    _, db, insts, _, recs = suite
    inst, bound = insts[0], recs[0]["bound"]
    t_opt, t_e = _opt(inst), empty_latency(inst)
    assert bound < t_opt * (1 - 1e-4), "the plain LP must leave a gap here, or this test checks nothing"
    t = certified_table(with_ratios(load_frame(db)), ALGS)
    row = t[t["instance_name"] == inst.name].iloc[0]
    assert row["reference"] == "bound" and row["bound"] == pytest.approx(bound, rel=1e-12)
    assert row["certified_gap"] == pytest.approx((row["best_latency"] - bound) / row["best_latency"], rel=1e-12)
    for a in ALGS:
        t_alg = latency(inst, run(inst, a, seed=0).placement)  # computed again, outside the store
        assert row[a] == pytest.approx((t_e - t_alg) / (t_e - bound), rel=1e-9, abs=1e-12)
        # a certified ratio is a lower bound on the exact one
        assert row[a] <= (t_e - t_alg) / (t_e - t_opt) + 1e-12


def test_exact_ratios_where_the_bound_meets_a_latency_equal_the_brute_force_ratios(suite):
    _, db, insts, _, recs = suite
    inst = insts[1]
    t_opt, t_e = _opt(inst), empty_latency(inst)
    assert recs[1]["bound"] == pytest.approx(t_opt, rel=1e-6)
    t = certified_table(with_ratios(load_frame(db)), [*ALGS, "certify"])
    row = t[t["instance_name"] == inst.name].iloc[0]
    assert row["reference"] == "optimum" and row["certified_gap"] == pytest.approx(0, abs=1e-6)
    for a in ALGS:
        t_alg = latency(inst, run(inst, a, seed=0).placement)
        assert row[a] == pytest.approx((t_e - t_alg) / (t_e - t_opt), rel=1e-6, abs=1e-9)
    assert row["certify"] == pytest.approx(1.0, abs=1e-6)
    assert row["size"] == f"2 x 3, top-2, N={inst.N}, U={inst.U}"
    md = format_table(t, "markdown")
    assert f"{row['best_latency']:.6f}" in md and f"{row['best']:.4f}" in md  # six decimals, not three figures


def test_a_planted_bound_above_a_latency_is_refused_and_nothing_is_imported(suite, tmp_path):
    _, db, insts, files, recs = suite
    inst = insts[0]
    with ResultStore(str(db), readonly=True) as st:
        stored = [r for r in st.rows("instance_hash = ?", (inst.content_hash(),)) if r["feasible"]]
    worst = max(stored, key=lambda r: r["latency"])  # a feasible latency of the store (cloud's)
    good = recs[1]
    bad = dict(recs[0], bound=worst["latency"] * (1 + 1e-6))  # above a stored feasible latency
    rec = tmp_path / "bad.jsonl"
    rec.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    n = len(load_frame(db))
    with pytest.raises(InputError, match=r"line 2: bound: .*exceeds the latency"):
        import_certificates(str(db), rec)
    assert len(load_frame(db)) == n  # the good first line was not written either
    # within floating point of the best latency it is not a false bound
    from slimcaching.formulations.bounds import BOUND_RTOL

    ok = dict(recs[0], bound=recs[0]["latency"] * (1 + 0.5 * BOUND_RTOL))
    db2 = tmp_path / "ok.sqlite"
    rec.write_text(json.dumps(ok) + "\n")
    assert import_certificates(str(db2), rec) == 1


def test_a_record_whose_placement_is_not_its_latency_or_infeasible_is_refused(suite, tmp_path):
    _, _, insts, _, recs = suite
    rec, db = tmp_path / "x.jsonl", tmp_path / "x.sqlite"
    lying = dict(recs[1], latency=recs[1]["latency"] * 0.99)
    rec.write_text(json.dumps(lying) + "\n")
    with pytest.raises(InputError, match=r"line 1: latency: .* is not the evaluator's"):
        import_certificates(str(db), rec)
    inst = insts[1]
    full = {n: [[l, e] for l in range(inst.L) for e in range(int(inst.experts[l]))] for n in inst.node_names}
    over = dict(recs[1], placement=full)
    rec.write_text(json.dumps(over) + "\n")
    with pytest.raises(InputError, match=r"line 1: placement: over the capacity"):
        import_certificates(str(db), rec)


def test_a_run_that_did_not_finish_is_named_not_hidden(suite, tmp_path):
    import shutil

    _, db, insts, _, _ = suite
    db2 = tmp_path / "t.sqlite"
    shutil.copy(db, db2)
    inst = insts[0]
    with ResultStore(str(db2)) as st:
        row = next(r for r in st.rows("instance_hash = ? AND algorithm = 'best'", (inst.content_hash(),)))
        row.update(status="timeout", feasible=None, latency=None, gain=None, placement=None)
        st.put(row)
    t = certified_table(with_ratios(load_frame(db2)), ALGS)
    r = t[t["instance_name"] == inst.name].iloc[0]
    assert r["not_finished"] == "best (timeout)" and r["best"] != r["best"]  # NaN: no ratio for it


def test_the_benchmark_prints_the_table_with_the_checked_ratios(suite, tmp_path):
    from benchmarks.perf_paper_table import main

    d, _, insts, files, recs = suite
    rec = d / "certified.jsonl"
    out = main(["--files", str(files[0]), "--algorithms", "best,cloud", "--records", str(rec),
                "--db", str(tmp_path / "b.sqlite"), "--hard-timeout", "120"])
    inst, bound = insts[0], recs[0]["bound"]
    t_e, t_best = empty_latency(inst), latency(inst, run(inst, "best", seed=0).placement)
    row = next(ln for ln in out.splitlines() if ln.startswith(f"| {inst.name} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert f"{(t_e - t_best) / (t_e - bound):.4f}" in cells and "0.0000" in cells  # best, and cloud's 0
    assert f"{bound:.6f}" in cells and "bound" in cells
    assert "1 certificate(s) imported" in out and inst.name in out.split("CPU seconds per run")[1]
    assert insts[1].name not in out  # the other instance's record was not imported
