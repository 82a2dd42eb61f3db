"""Figures and sweep grids."""
from __future__ import annotations

import numpy as np
import pytest

from slimcaching.analysis.figures import fit_slope, make_figures
from slimcaching.analysis.runner import run_sweep
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


def test_figures_from_a_capacity_sweep(tmp_path, capsys):
    base = {"layers": 1, "experts": 4, "top_k": 2, "nodes": 2, "users": 2}
    sweep("capacity_fraction", [0.25, 0.5], out_dir=tmp_path / "cap", seeds=[0, 1], base=base)
    sweep("experts", [3, 6], out_dir=tmp_path / "cap", seeds=[0], base=base)
    db = tmp_path / "r.sqlite"
    run_sweep([tmp_path / "cap"], "brute-force,successive", db=db, progress=False)
    files = make_figures(str(db), tmp_path / "fig")
    names = {f.name for f in files}
    for stem in ("latency_vs_cap_frac_cap", "ratio_caching", "runtime_scaling"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    for f in files:
        head = f.read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if f.suffix == ".png" else head.startswith(b"%PDF")
    from slimcaching.cli import main

    assert main(["figures", str(db), "--out", str(tmp_path / "fig2")]) == 0
    assert "ratio_caching.png" in capsys.readouterr().out


def test_demo_on_a_small_folder_writes_every_output(tmp_path):
    from slimcaching.analysis.demo import demo

    sweep("capacity_fraction", [0.25, 0.5], out_dir=tmp_path / "mini", seeds=[0],
          base={"layers": 1, "experts": 3, "top_k": 2, "nodes": 2, "users": 2})
    lines = []
    files = demo(tmp_path / "out", suites=[str(tmp_path / "mini")], jobs=1, exact_time_limit=10,
                 progress=False, log=lines.append)
    for key in ("ratio_md", "ratio_tex", "ratio_csv", "formulations_md", "formulations_tex", "guarantees_md"):
        assert files[key].exists() and files[key].stat().st_size > 0
    text = "\n".join(lines)
    assert "left out: brute-force" in text and "| mini | exact | 2 | 2 | 2 | 1.0000 |" in text
    assert (tmp_path / "out" / "figures" / "ratio_caching.pdf").exists()
    assert r"\bottomrule" in files["ratio_tex"].read_text()
