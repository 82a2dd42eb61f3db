"""Report numbers equal a recomputation from the raw stored values."""
from __future__ import annotations

import io
import sqlite3

import numpy as np
import pandas as pd
import pytest

from slimcaching.analysis.report import (format_table, formulation_table, load_frame, ratio_table, report,
                                         with_ratios)
from slimcaching.analysis.runner import run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import write_instance


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    for s in range(4):
        inst = random_instance(layers=2, experts=3, top_k=1 + s % 2, nodes=2, users=2, seed=s,
                               capacity_fraction=0.3)
        write_instance(inst, d / "suite" / f"i{s}.json")
    path = d / "r.sqlite"
    run_sweep([d / "suite"], "brute-force,successive,cyclic", db=path, seeds=[0], progress=False)
    return path


def _raw(db):
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM runs")]


def test_ratio_table_equals_recomputation_from_raw_rows(db):
    rows = _raw(db)
    opt = {r["instance_hash"]: r["reduction"] for r in rows
           if r["algorithm"] == "brute-force" and r["status"] == "optimal"}
    opt_t = {r["instance_hash"]: r["latency"] for r in rows
             if r["algorithm"] == "brute-force" and r["status"] == "optimal"}
    table = ratio_table(with_ratios(load_frame(db)), ["algorithm"]).set_index("algorithm")
    for alg in ("brute-force", "successive", "cyclic"):
        mine = [r for r in rows if r["algorithm"] == alg]
        ratios = np.array([r["reduction"] / opt[r["instance_hash"]] if opt[r["instance_hash"]] > 0 else 1.0
                           for r in mine])
        lratios = np.array([r["latency"] / opt_t[r["instance_hash"]] for r in mine])
        t = table.loc[alg]
        assert t["runs"] == len(mine) and t["instances"] == 4 and t["proven"] == 4
        assert t["mean_ratio"] == pytest.approx(ratios.mean(), rel=1e-12)
        assert t["min_ratio"] == pytest.approx(ratios.min(), rel=1e-12)
        assert t["p5_ratio"] == pytest.approx(np.percentile(ratios, 5), rel=1e-12)
        assert t["mean_latency_ratio"] == pytest.approx(lratios.mean(), rel=1e-12)
        assert t["median_runtime_s"] == pytest.approx(np.median([r["runtime_s"] for r in mine]), rel=1e-12)
        assert (ratios <= 1 + 1e-9).all() and (lratios >= 1 - 1e-9).all()
    assert table.loc["brute-force", "min_ratio"] == 1.0 and table.loc["brute-force", "mean_latency_ratio"] == 1.0


def test_group_by_top_k_partitions_the_rows(db):
    df = with_ratios(load_frame(db))
    t = ratio_table(df, ["top_k", "algorithm"])
    assert sorted(set(t["top_k"])) == [1, 2]
    assert t["runs"].sum() == len(df)
    with pytest.raises(InputError, match="unknown column 'bogus'"):
        ratio_table(df, ["bogus"])


def _synthetic(tmp_path):
    """Rows with an unproven reference, an LP bound and a zero-gain instance."""
    st = ResultStore(tmp_path / "syn.sqlite")
    base = {"family": "caching", "params": {}, "seed": 0, "feasible": True, "empty_latency": 10.0,
            "runtime_s": 1.0, "instance_path": str(tmp_path / "s" / "x.json")}
    # instance A: exact stopped at the time limit with bound T_lb = 6 -> R_upper = 4
    st.put({**base, "instance_hash": "A", "algorithm": "exact", "status": "time_limit", "latency": 7.0,
            "reduction": 3.0, "gain": 3.0, "bound": 6.0, "gain_upper": 4.0})
    st.put({**base, "instance_hash": "A", "algorithm": "greedy", "status": "heuristic", "latency": 8.0,
            "reduction": 2.0, "gain": 2.0})
    # instance B: proven optimum R = 5, LP bounds of two formulations
    st.put({**base, "instance_hash": "B", "algorithm": "exact", "status": "optimal", "latency": 5.0,
            "reduction": 5.0, "gain": 5.0, "bound": 5.0, "gain_upper": 5.0, "runtime_s": 3.0})
    st.put({**base, "instance_hash": "B", "algorithm": "exact", "params": {"formulation": "assignment"},
            "status": "optimal", "latency": 5.0, "reduction": 5.0, "gain": 5.0, "bound": 5.0,
            "gain_upper": 5.0, "runtime_s": 9.0})
    st.put({**base, "instance_hash": "B", "algorithm": "greedy", "status": "heuristic", "latency": 6.0,
            "reduction": 4.0, "gain": 4.0})
    st.put({**base, "instance_hash": "B", "algorithm": "lp-bound", "params": {"formulation": "level"},
            "status": "feasible", "bound": 4.5, "gain_upper": 5.5, "runtime_s": 0.5})
    st.put({**base, "instance_hash": "B", "algorithm": "lp-bound", "params": {"formulation": "assignment"},
            "status": "feasible", "bound": 4.0, "gain_upper": 6.0, "runtime_s": 0.25})
    # instance C: nothing to gain; every feasible placement is optimal
    st.put({**base, "instance_hash": "C", "algorithm": "exact", "status": "optimal", "latency": 10.0,
            "reduction": 0.0, "gain": 0.0, "bound": 10.0, "gain_upper": 0.0})
    st.put({**base, "instance_hash": "C", "algorithm": "greedy", "status": "heuristic", "latency": 10.0,
            "reduction": 0.0, "gain": 0.0})
    # a failed run and an infeasible one get no ratio
    st.put({**base, "instance_hash": "B", "algorithm": "cloud", "status": "error", "message": "x"})
    st.put({**base, "instance_hash": "B", "algorithm": "random", "status": "heuristic", "latency": 1.0,
            "reduction": 9.0, "gain": 9.0, "feasible": False})
    st.close()
    return tmp_path / "syn.sqlite"


def test_unproven_reference_gives_certified_lower_bound(tmp_path):
    df = with_ratios(load_frame(_synthetic(tmp_path))).set_index(["instance_hash", "algorithm"])
    a = df.loc[("A", "greedy")]
    assert not a["proven"] and a["ratio"] == pytest.approx(2.0 / 4.0)  # R(alg) / R_upper
    assert a["latency_ratio"] == pytest.approx(8.0 / 6.0)  # T(alg) / T_lb >= T(alg) / T(opt)
    b = df.loc[("B", "greedy")]
    assert b["proven"] and b["ratio"] == pytest.approx(4.0 / 5.0) and b["latency_ratio"] == pytest.approx(6 / 5)
    assert df.loc[("B", "exact")]["ratio"] == 1.0
    assert df.loc[("C", "greedy")]["ratio"] == 1.0  # R(opt) = 0
    assert np.isnan(df.loc[("B", "cloud")]["ratio"]) and np.isnan(df.loc[("B", "random")]["ratio"])
    t = ratio_table(with_ratios(load_frame(tmp_path / "syn.sqlite")), ["algorithm"]).set_index("algorithm")
    assert t.loc["greedy", "instances"] == 3 and t.loc["greedy", "proven"] == 2
    assert t.loc["greedy", "mean_ratio"] == pytest.approx((0.5 + 0.8 + 1.0) / 3)
    assert t.loc["cloud", "failed"] == 1 and t.loc["random", "failed"] == 1
    assert "lp-bound" not in t.index


def test_formulation_table(tmp_path):
    ft = formulation_table(with_ratios(load_frame(_synthetic(tmp_path)))).set_index("formulation")
    assert ft.loc["level", "lp_over_opt"] == pytest.approx(4.5 / 5.0)
    assert ft.loc["level", "root_gap"] == pytest.approx(0.5 / 5.0)
    assert ft.loc["level", "r_gap"] == pytest.approx(0.5 / 5.0)
    assert ft.loc["assignment", "root_gap"] == pytest.approx(1.0 / 5.0)
    assert ft.loc["assignment", "median_exact_s"] == 9.0
    # "exact" without a formulation parameter counts as the default (level); only B has LP bounds,
    # so only B's MILP runs are compared (A's and C's are left out)
    assert ft.loc["level", "exact_runs"] == 1 and ft.loc["level", "exact_optimal"] == 1
    assert ft.loc["level", "median_exact_s"] == 3.0
    assert ft.loc["level", "instances"] == 1 and ft.loc["level", "median_lp_s"] == 0.5


def test_formats(db):
    df = with_ratios(load_frame(db))
    t = ratio_table(df, ["family", "algorithm"])
    md = format_table(t, "markdown")
    lines = md.strip().splitlines()
    assert len(lines) == 2 + len(t) and lines[1].startswith("|---|")
    tex = format_table(t, "latex", caption="ratios_x & y")
    spec = "ll" + "r" * (len(t.columns) - 2)  # two text columns, then numbers only
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}{" + spec + "}", r"ratios\_x \& y",
                r"brute-force"):
        assert cmd in tex
    back = pd.read_csv(io.StringIO(format_table(t, "csv")))
    assert np.allclose(back["mean_ratio"], t["mean_ratio"]) and list(back.columns) == list(t.columns)
    with pytest.raises(InputError, match="unknown format 'html'"):
        format_table(t, "html")


def test_report_cli(db, tmp_path, capsys):
    from slimcaching.cli import main

    assert main(["report", str(db), "--group-by", "family,top_k,algorithm"]) == 0
    out = capsys.readouterr().out
    assert "| family | top-k | algorithm |" in out
    out_file = tmp_path / "t.tex"
    assert main(["report", str(db), "--format", "latex", "-o", str(out_file)]) == 0
    assert out_file.read_text().count(r"\toprule") == 1
    assert main(["report", str(tmp_path / "none.sqlite")]) == 2
    assert "no such results database" in capsys.readouterr().err
    assert main(["report", str(db), "--table", "formulations"]) == 2
    assert "no lp-bound runs" in capsys.readouterr().err
    syn = _synthetic(tmp_path)
    assert main(["report", str(syn), "--table", "formulations", "--format", "csv"]) == 0
    back = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(back["formulation"]) == ["assignment", "level"]
    with pytest.raises(InputError, match="unknown table 'x'"):
        report(str(syn), table="x")
    empty = tmp_path / "empty.sqlite"
    ResultStore(empty).close()
    with pytest.raises(InputError, match="holds no runs"):
        report(str(empty))
