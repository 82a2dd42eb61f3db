"""Figures and sweep grids: the data each line is drawn from, fonts, sizes, discrete axes."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from slimcaching.analysis.figures import (OPTIMUM, WIDTHS, _draw_lines, fit_slope, latency_points, make_figures,
                                          scaling_points, styles)
from slimcaching.analysis.report import load_frame, with_ratios
from slimcaching.analysis.runner import run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.analysis.sweeps import sweep
from slimcaching.errors import InputError
from slimcaching.instances.io import read_instance


def test_fit_slope_recovers_power_law():
    n = np.array([10, 20, 40, 80, 160.0])
    assert fit_slope(n, 3e-6 * n ** 2.0) == pytest.approx(2.0)
    assert fit_slope(n, 0.1 * n ** 0.5) == pytest.approx(0.5)
    assert np.isnan(fit_slope(np.array([5.0, 5.0]), np.array([1.0, 2.0])))


def test_sweep_varies_one_axis(tmp_path):
    files = sweep("top_k", [1, 2, 3], out_dir=tmp_path / "topk", seeds=[0, 1],
                  base={"experts": 2, "layers": 1, "nodes": 1, "users": 1})
    assert len(files) == 6
    insts = [read_instance(f) for f in files]
    assert sorted({i.max_top_k for i in insts}) == [1, 2, 3]
    assert all(i.max_experts >= i.max_top_k for i in insts)  # experts raised to fit top-k
    assert insts[0].metadata["sweep"] == {"axis": "top_k", "value": 1}
    with pytest.raises(InputError, match="unknown sweep axis 'colour'"):
        sweep("colour", [1], out_dir=tmp_path / "x")


# ------------------------------------------------------------------ the data behind the lines
def _planted(tmp_path):
    """Six instances at top-k 1, 2, 4 (two each); 'c' fails on i2, 'b' is infeasible on i4 (seed 0
    only: seed 1 is fine), the exact reference is unproven on i5; a third algorithm 'late' ran on one
    instance only."""
    st = ResultStore(tmp_path / "p.sqlite")
    rng = np.random.default_rng(3)
    opt = {}
    for i in range(6):
        h, k = f"i{i}", (1, 2, 4)[i // 2]
        base = {"family": "caching", "instance_hash": h, "instance_name": h, "top_k": k, "params": {},
                "seed": 0, "empty_latency": 10.0, "runtime_s": 0.1, "feasible": True,
                "instance_path": str(tmp_path / "grid" / f"{h}.json")}
        t_opt = 4.0 + i
        opt[h] = t_opt
        status = "time_limit" if i == 5 else "optimal"
        st.put({**base, "algorithm": "exact", "status": status, "latency": t_opt, "gain": 10 - t_opt,
                "reduction": 10 - t_opt, "bound": t_opt - (1.0 if i == 5 else 0.0),
                "gain_upper": 10 - t_opt + (1.0 if i == 5 else 0.0)})
        for a in ("a", "b", "c"):
            for seed in (0, 1):
                lat = t_opt + rng.uniform(0, 2)
                row = {**base, "algorithm": a, "seed": seed, "status": "heuristic", "latency": lat,
                       "gain": 10 - lat, "reduction": 10 - lat}
                if a == "c" and i == 2:
                    row = {**base, "algorithm": a, "seed": seed, "status": "error", "message": "boom"}
                if a == "b" and i == 4 and seed == 0:
                    row["feasible"] = False
                st.put(row)
    st.put({"family": "caching", "instance_hash": "i0", "instance_name": "i0", "top_k": 1, "params": {},
            "seed": 0, "empty_latency": 10.0, "runtime_s": 0.1, "feasible": True, "algorithm": "late",
            "status": "heuristic", "latency": 9.0, "gain": 1.0, "instance_path": str(tmp_path / "grid" / "i0.json")})
    st.close()
    return with_ratios(load_frame(tmp_path / "p.sqlite")), opt


def test_every_line_averages_the_same_instances_and_the_optimum_only_where_all_are_proven(tmp_path):
    df, opt = _planted(tmp_path)
    pts = latency_points(df, "top_k", n_boot=200)
    assert set(pts["algorithm"]) == {"a", "b", "c", OPTIMUM}  # 'late' covers 1 of 6 instances: left out
    for x, g in pts.groupby("x"):
        assert len({tuple(s) for s in g["instances"]}) == 1, f"different instance sets at top-k {x}"
    sets = {x: set(g["instances"].iloc[0]) for x, g in pts.groupby("x")}
    assert sets == {1.0: {"i0", "i1"}, 2.0: {"i3"}, 4.0: {"i4", "i5"}}  # i2: 'c' failed there
    # the optimum is drawn at top-k 1 and 2 only: i5 has no proven optimum
    assert sorted(pts.loc[pts["algorithm"] == OPTIMUM, "x"]) == [1.0, 2.0]
    o = pts[(pts["algorithm"] == OPTIMUM) & (pts["x"] == 1.0)].iloc[0]
    assert o["mean"] == pytest.approx((opt["i0"] + opt["i1"]) / 2 / 10.0)
    # a line's value is the mean over instances of the mean over seeds (feasible runs only)
    raw = df[(df["name"] == "b") & (df["instance_hash"].isin(["i4", "i5"])) & (df["feasible"] == 1)]
    per_inst = (raw["latency"] / raw["empty_latency"]).groupby(raw["instance_hash"]).mean()
    b = pts[(pts["algorithm"] == "b") & (pts["x"] == 4.0)].iloc[0]
    assert b["mean"] == pytest.approx(per_inst.mean()) and b["n"] == 2
    assert b["lo"] <= b["mean"] <= b["hi"]
    # no line may sit below the optimum it is compared with
    for x in (1.0, 2.0):
        g = pts[pts["x"] == x]
        assert (g.loc[g["algorithm"] != OPTIMUM, "mean"] >= g.loc[g["algorithm"] == OPTIMUM, "mean"].iloc[0]).all()


def test_discrete_axis_has_integer_category_ticks_and_no_joining_lines(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df, _ = _planted(tmp_path)
    pts = latency_points(df, "top_k", n_boot=100)
    fig, ax = plt.subplots()
    _draw_lines(ax, pts, "top_k", styles(["a", "b", "c"]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    assert list(ax.get_xticks()) == [0, 1, 2]  # categories, evenly spaced: 4 is not twice as far as 2
    for line in ax.lines:
        if len(line.get_xdata()) > 1:
            assert line.get_linestyle() == "None", "points of a discrete axis must not be joined"
    plt.close(fig)


def test_styles_are_distinct_and_fixed():
    many = ["best", "greedy", "cloud", "exact", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10"]
    sty = styles(many)
    pairs = [(sty[a]["color"], sty[a]["marker"]) for a in many]
    assert len(set(pairs)) == len(pairs)
    assert styles(["best"])["best"] == sty["best"] and styles(["greedy", "zzz"])["greedy"] == sty["greedy"]
    assert sty[OPTIMUM]["color"] == "black"


def test_scaling_points_use_common_instances(tmp_path):
    base = {"layers": 1, "experts": 3, "top_k": 1, "nodes": 1, "users": 1}
    sweep("experts", [2, 4, 6], out_dir=tmp_path / "scal", seeds=[0, 1], base=base)
    db = tmp_path / "s.sqlite"
    run_sweep([tmp_path / "scal"], "greedy,successive", db=db, progress=False)
    pts = scaling_points(with_ratios(load_frame(db)), n_boot=100)
    assert pts["x"].nunique() == 3
    for _, g in pts.groupby("x"):
        assert len({tuple(s) for s in g["instances"]}) == 1 and (g["n"] == 2).all()
        assert (g["lo"] <= g["median"]).all() and (g["median"] <= g["hi"]).all()


# ------------------------------------------------------------------ the files
@pytest.fixture(scope="module")
def figure_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("figs")
    base = {"layers": 1, "experts": 4, "top_k": 2, "nodes": 2, "users": 2}
    sweep("capacity_fraction", [0.25, 0.5], out_dir=d / "cap", seeds=[0, 1], base=base)
    sweep("top_k", [1, 2], out_dir=d / "topk", seeds=[0, 1], base={**base, "users": 3})
    sweep("experts", [3, 6], out_dir=d / "cap", seeds=[0], base=base)
    db = d / "r.sqlite"
    run_sweep([d / "cap", d / "topk"], "brute-force,successive,greedy", db=db, progress=False)
    return db


def _pdf_fonts(path) -> str:
    return subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout


def _media_box_width(data: bytes) -> float:
    m = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", data)
    assert m, "no MediaBox"
    return float(m.group(1))


@pytest.mark.parametrize("width", ["auto", "page"])
def test_figure_files_have_no_type3_fonts_and_paper_widths(figure_store, tmp_path, width):
    files = make_figures(str(figure_store), tmp_path / "fig", width=width)
    names = {f.name for f in files}
    for stem in ("latency_vs_cap_frac_cap", "latency_vs_top_k_topk", "ratio_ecdf_caching",
                 "profile_runtime_caching", "profile_latency_caching", "runtime_scaling_caching"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    pdfs = [f for f in files if f.suffix == ".pdf"]
    for f in pdfs:
        data = f.read_bytes()
        assert data.startswith(b"%PDF")
        assert b"/Type3" not in data and b"/Subtype /Type3" not in data, f"{f.name} embeds a Type 3 font"
        assert b"/FontFile2" in data, f"{f.name}: fonts are not embedded as TrueType"
        w = _media_box_width(data) / 72.0
        allowed = {WIDTHS["page"]} if width == "page" else set(WIDTHS.values())
        assert any(abs(w - a) < 0.01 for a in allowed), f"{f.name} is {w:.2f} in wide"
        if shutil.which("pdffonts"):
            fonts = _pdf_fonts(f)
            assert "Type 3" not in fonts and "TrueType" in fonts
    for f in files:
        if f.suffix == ".png":
            assert f.read_bytes()[:8].startswith(b"\x89PNG")


def test_figures_cli(figure_store, tmp_path, capsys):
    from slimcaching.cli import main

    assert main(["figures", str(figure_store), "--out", str(tmp_path / "f"), "--width", "column"]) == 0
    assert "ratio_ecdf_caching.pdf" in capsys.readouterr().out
    # a subset of the lines: the optimum still comes from the brute-force runs left out of the plot
    files = make_figures(str(figure_store), tmp_path / "g", algorithms=["greedy", "successive"])
    assert {"latency_vs_top_k_topk.pdf", "profile_runtime_caching.pdf"} <= {f.name for f in files}
    df = with_ratios(load_frame(figure_store))
    sub = df[df["name"].isin(["greedy", "successive"])]
    pts = latency_points(sub[sub["suite"] == "topk"], "top_k", n_boot=50)
    assert set(pts["algorithm"]) == {"greedy", "successive", OPTIMUM}
    with pytest.raises(SystemExit) as exc:
        main(["figures", str(figure_store), "--out", str(tmp_path / "f"), "--width", "huge"])
    assert exc.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err
