"""The benchmark entry point (``make bench``), outside the installed package."""
from __future__ import annotations

import numpy as np
import pytest

from slimcaching.errors import InputError


def test_bench_entry_point_lists_and_rejects(capsys):
    from benchmarks.run import available, main, run_benchmarks

    assert "foundation" in available()
    assert main(["--list"]) == 0 and "foundation" in capsys.readouterr().out
    with pytest.raises(InputError, match="unknown benchmark 'nope'"):
        run_benchmarks(["nope"])


def test_perf_bounds_row_is_a_valid_bound_against_its_record():
    """The bounds benchmark's separable bound sits below the committed certificate's latency."""
    import json
    from pathlib import Path

    from benchmarks.perf_bounds import RECORDS, run

    f = "instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json"
    rec = next(json.loads(ln) for ln in RECORDS.read_text().splitlines() if Path(json.loads(ln)["file"]).name
               == Path(f).name)
    out = run([f], rounds=200)
    row = next(ln for ln in out.splitlines() if ln.startswith("| paper-mixtral-8x7b-wifi-rtx-bf16"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    bound, rounds = float(cells[4]), int(cells[5])
    assert 0 < bound <= rec["latency"] * (1 + 1e-9)
    assert rounds <= 200


def test_perf_certify_perturb_row_orders_the_two_price_and_branch_runs():
    """``--perturb``: price-and-branch with the perturbed columns is never worse than without them,
    and neither is below the decomposition's bound (a tiny file: brute-force scale, seconds)."""
    from benchmarks.perf_certify import perturb_rows

    from slimcaching.algorithms.bruteforce import brute_force
    from slimcaching.instances.io import read_instance

    files = ["instances/tiny/tiny-000.json", "instances/tiny/tiny-014.json"]  # 5 new columns each
    for f, row in zip(files, perturb_rows(files, rounds=10, seed=0)):
        opt = brute_force(read_instance(f)).latency
        assert row["perturbed_columns"] > 0
        assert row["bound"] <= opt * (1 + 1e-9)
        assert opt * (1 - 1e-9) <= row["pab_perturbed"] <= row["pab"] * (1 + 1e-12)


def test_perf_certify_passes_a_target_gap_to_each_certificate(tmp_path):
    """``--gap``: each row and each record carries the target, and each certified gap is within it and
    brackets the brute-force optimum (tiny files, seconds)."""
    import json

    from benchmarks.perf_certify import certify_rows, certify_table

    from slimcaching.algorithms.bruteforce import brute_force
    from slimcaching.instances.io import read_instance

    files = ["instances/tiny/tiny-000.json", "instances/tiny/tiny-014.json"]
    records = tmp_path / "certify.jsonl"
    rows = certify_rows(files, time_limit=60, seed=0, records=str(records), gap=0.05)
    lines = [json.loads(ln) for ln in records.read_text().splitlines()]
    for f, row, rec in zip(files, rows, lines):
        opt = brute_force(read_instance(f)).latency
        assert row["gap_target"] == 0.05 and rec["info"]["gap_target"] == 0.05 and rec["file"] == f
        assert row["gap"] <= 0.05 + 1e-9
        assert row["bound"] <= opt * (1 + 1e-9) <= row["latency"] * (1 + 1e-9)
    assert "target gap 5 %" in certify_table(rows, 60, 0.05)


def test_perf_enumeration_proves_the_brute_force_optimum_and_is_reproducible(tmp_path):
    """The enumeration benchmark ends with the brute-force optimum, proved, on two tiny files where the
    decomposition's bound is 21 % and 10 % below it (so the enumeration closed a gap); the bound used for
    fixing is valid and the start is feasible; the recorded placement re-reads as the proven one; the
    work-limited start, all counts and the placement come out the same twice."""
    import json

    from benchmarks.perf_enumeration import enumeration_rows, enumeration_table

    from slimcaching.algorithms.bruteforce import brute_force
    from slimcaching.instances.io import read_instance, read_placement
    from slimcaching.objective import latency

    files = ["instances/tiny/tiny-012.json", "instances/tiny/tiny-027.json"]
    rows = enumeration_rows(files, time_limit=300, seed=0)
    again = enumeration_rows(files[:1], time_limit=300, seed=0)
    for f, row in zip(files, rows):
        opt = brute_force(read_instance(f)).latency
        assert row["decomposition_bound"] < opt * (1 - 0.05)
        assert row["proved"] and row["gap"] <= 1e-9 and row["outer_status"] == "Optimal"
        assert row["latency"] == pytest.approx(opt, rel=1e-9) and row["bound"] == pytest.approx(opt, rel=1e-9)
        assert row["start_bound"] <= opt * (1 + 1e-9)
        assert opt * (1 - 1e-9) <= row["start_latency"] <= row["price_and_branch"]
        assert 0 < row["kept"] <= row["vectors"]
        # the recorded placement is the proven one: feasible, and of the recorded latency by the evaluator
        inst = read_instance(f)
        path = tmp_path / f"{inst.name}-placement.json"
        path.write_text(json.dumps(row["placement"]))
        placed, _ = read_placement(path, inst)
        assert placed.is_feasible(inst) and latency(inst, placed) == pytest.approx(row["latency"], rel=1e-12)
    keys = ("start_latency", "start_bound", "vectors", "kept", "solved", "outer_nodes", "bound", "latency",
            "placement")
    assert {k: again[0][k] for k in keys} == {k: rows[0][k] for k in keys}
    assert enumeration_table(rows).count("**0 (optimal)**") == 2


def test_perf_count_tables_rows_report_the_tables_they_timed():
    """Each row names the scan ``certify`` would use and the vectors its tables keep; the node-set row
    appears beside a mask-scan row (with a ratio) only where both scans are within the work limit."""
    from benchmarks.perf_count_tables import table, table_rows

    from slimcaching.formulations.count_tables import count_table, table_work
    from slimcaching.formulations.enumeration import _ranges
    from slimcaching.formulations.tightenings import DEFAULT_TIGHTENINGS, tightened_capacities
    from slimcaching.instances.io import read_instance

    files = ["instances/tiny/tiny-012.json", "instances/tiny/tiny-027.json"]
    rows = table_rows(files, layers=2, repeat=1)
    for f in files:
        inst = read_instance(f)
        hi = _ranges(inst, tightened_capacities(inst, tuple(DEFAULT_TIGHTENINGS)))
        mine = {r["scan"]: r for r in rows if r["instance"] == inst.name}
        auto = [count_table(inst, l, hi[l]) for l in range(min(2, inst.L))]
        main = mine["masks"] if "masks" in mine else mine["dp"]
        assert main["kept"] == [int(np.isfinite(t.cost).sum()) for t in auto]
        assert main["work"] == pytest.approx(np.median([table_work(inst, l, hi[l]) for l in range(len(auto))]))
        assert main["file_s"] == pytest.approx(main["median_s"] * inst.L)
        if "node-sets" in mine:
            assert mine["node-sets"]["ratio"] > 0 and main["ratio"] is None
    assert any("node-sets" in r["scan"] for r in rows)
    assert "node sets / masks" in table(rows, 1)
