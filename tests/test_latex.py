"""LaTeX tables: labels, chosen columns, rows equal to the raw store, escaping, widths, and that
every table compiles in a minimal IEEEtran document (when pdflatex is installed)."""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest

from slimcaching.analysis.guarantees import check_guarantees
from slimcaching.analysis.report import (COLUMN_PT, FORMULATION_CAPTION, PAGE_PT, format_table, formulation_table,
                                         load_frame, proof_table, ratio_caption, ratio_table, report,
                                         select_columns, with_ratios)
from slimcaching.analysis.runner import run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import write_instance

ROOT = Path(__file__).resolve().parents[1]
PDFLATEX = shutil.which("pdflatex")
needs_tex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (make check-latex installs it)")

ALGS = ("brute-force", "greedy", "successive", "cloud")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two suites, one with LaTeX specials in its folder name; top-k 1 and 2."""
    d = tmp_path_factory.mktemp("latex")
    for s in range(6):
        inst = random_instance(layers=2, experts=3, top_k=1 + s % 2, nodes=2, users=2, seed=10 + s,
                               capacity_fraction=0.35)
        write_instance(inst, d / ("plain" if s < 3 else "odd_suite&50%") / f"i{s}.json")
    db = d / "r.sqlite"
    run_sweep([d / "plain", d / "odd_suite&50%"], ",".join(ALGS), db=db, progress=False)
    # an LP bound and an unproven exact run on a copy of one instance, for the other tables
    return db


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Proven and bound-only instances, LP bounds of two formulations (synthetic rows)."""
    d = tmp_path_factory.mktemp("mixed")
    st = ResultStore(d / "m.sqlite")
    base = {"family": "caching", "params": {}, "seed": 0, "feasible": True, "empty_latency": 10.0,
            "runtime_s": 0.5, "instance_path": str(d / "s" / "x.json")}
    for h, proven in (("A", False), ("B", True), ("C", True)):
        st.put({**base, "instance_hash": h, "algorithm": "exact", "status": "optimal" if proven else "feasible",
                "latency": 5.0, "gain": 5.0, "bound": 5.0 if proven else 4.0, "gain_upper": 5.0 if proven else 6.0,
                "runtime_s": 12.5})
        for f, lb in (("level", 4.5), ("assignment", 4.0)):
            st.put({**base, "instance_hash": h, "algorithm": "lp-bound", "params": {"formulation": f},
                    "status": "feasible", "bound": lb, "gain_upper": 10 - lb, "runtime_s": 0.02})
        st.put({**base, "instance_hash": h, "algorithm": "greedy", "status": "heuristic", "latency": 6.0,
                "gain": 4.0, "runtime_s": 3e-5})
    st.close()
    return d / "m.sqlite"


# ------------------------------------------------------------------ structure
def _body(tex: str) -> list[list[str]]:
    """Cells of the body rows (between the header \\midrule and \\bottomrule), each preceded by the
    heading of its row group ('' without groups); group rules and heading rows dropped."""
    lines = tex.splitlines()
    top = lines.index(r"\toprule")
    mid = lines.index(r"\midrule", top)
    end = lines.index(r"\bottomrule")
    rows, group = [], ""
    for ln in lines[mid + 1:end]:
        m = re.fullmatch(r"\\multicolumn\{\d+\}\{@\{\}l\}\{\\textit\{(.*)\}\} \\\\", ln)
        if m:
            group = m.group(1)
        elif ln != r"\midrule":
            rows.append([group, *(c.strip() for c in ln.rstrip("\\ ").split(" & "))])
    return rows


def _header(tex: str) -> list[str]:
    lines = tex.splitlines()
    mid = lines.index(r"\midrule", lines.index(r"\toprule"))
    return [c.strip() for c in lines[mid - 1].rstrip("\\ ").split(" & ")]


def test_latex_rows_reproduce_the_raw_store(store):
    with sqlite3.connect(store) as con:
        con.row_factory = sqlite3.Row
        rows = [dict(r) for r in con.execute("SELECT * FROM runs")]
    opt = {r["instance_hash"]: r["reduction"] for r in rows if r["algorithm"] == "brute-force"}
    tex = report(str(store), fmt="latex", group_by=["top_k", "algorithm"], table="ratios",
                 columns="proven,mean_ratio,min_ratio,failed")
    body = _body(tex)
    assert len(body) == 2 * len(ALGS)
    for cells in body:
        top_k = re.fullmatch(r"top-k = (\d+)", cells[0]).group(1)  # the row group's heading
        alg = cells[1]
        mine = [r for r in rows if r["algorithm"] == alg and r["top_k"] == int(top_k)]
        ratios = np.array([r["reduction"] / opt[r["instance_hash"]] if opt[r["instance_hash"]] > 1e-12 else 1.0
                           for r in mine])
        assert int(cells[2]) == len({r["instance_hash"] for r in mine})
        assert cells[3] == f"{ratios.mean():.4f}" and cells[4] == f"{ratios.min():.4f}"
        assert int(cells[5]) == 0


def test_label_columns_and_groups_as_chosen(store):
    tex = report(str(store), fmt="latex", group_by=["suite", "algorithm"], table="ratios",
                 columns="proven,min_ratio,median_runtime_s", label="tab:mine")
    assert r"\label{tab:mine}" in tex and tex.count(r"\begin{table") == 1
    assert _header(tex) == ["{algorithm}", "{$n$}", "{min}", "{time (ms)}"]  # the suites head row groups
    spec = re.search(r"\\begin\{tabular\}\{(.*)\}", tex).group(1)
    assert spec.startswith("lS") and spec.count("S[") == 3
    assert r"\cmidrule(lr){2-3}" in tex  # the 'proven optimum' header group
    body = _body(tex)
    assert [c[0] for c in body] == ["odd\\_suite\\&50\\%"] * 4 + ["plain"] * 4  # escaped, grouped
    assert [c[1] for c in body] == ["successive", "greedy", "cloud", "brute-force"] * 2  # ours, the paper's, baselines, references
    lines = tex.splitlines()
    assert lines.count(r"\midrule") == 2  # under the header, and between the two suites
    md = report(str(store), fmt="markdown", group_by=["suite", "algorithm"], table="ratios",
                columns="proven,min_ratio,median_runtime_s")
    assert md.splitlines()[0] == "| suite | algorithm | proven opt. | min ratio | median time (s) |"
    with pytest.raises(InputError, match="unknown column 'nope'"):
        report(str(store), fmt="latex", table="ratios", columns="proven,nope")


def test_certified_and_proven_columns_are_separate_and_captioned(mixed):
    tex = report(str(mixed), fmt="latex", group_by=["algorithm"], table="ratios", columns="paper")
    assert r"$R(\mathrm{alg})/R(\mathrm{opt})$" in tex and r"$R(\mathrm{alg})/\bar{R}$" in tex
    assert r"\multicolumn{3}{c}{proven optimum}" in tex and r"\multicolumn{3}{c}{bound only}" in tex
    greedy = next(c for c in _body(tex) if c[1] == "greedy")
    # proven: B and C, ratio 4/5; bound only: A, against the best bound of any row: the level LP's
    # 10 - 4.5 = 5.5 beats the exact run's 6
    assert greedy[2:8] == ["2", "0.8000", "0.8000", "1", "0.7273", "0.7273"]
    proofs = proof_table(with_ratios(load_frame(mixed))).set_index("instance_hash")
    assert proofs.loc["A", "source"] == "lp-bound[formulation=level]" and proofs.loc["A", "reference"] == "bound"
    assert proofs.loc["A", "gap"] == pytest.approx((5.5 - 5.0) / 5.5)
    # with nothing certified the 'paper' columns drop the bound-only group
    t = ratio_table(with_ratios(load_frame(mixed)), ["algorithm"])
    t = t.assign(certified=0)
    assert "cert_mean_ratio" not in select_columns(t, ["algorithm"], "paper").columns


def test_width_decides_table_or_table_star(store, mixed):
    narrow = report(str(store), fmt="latex", group_by=["algorithm"], table="ratios", columns="mean_ratio")
    wide = report(str(store), fmt="latex", group_by=["suite", "algorithm"], table="ratios", columns="all")
    assert r"\begin{table}[t]" in narrow and r"\begin{table*}[t]" in wide
    est = [float(re.search(r"% (\d+) pt estimated", t).group(1)) for t in (narrow, wide)]
    assert est[0] <= COLUMN_PT < est[1]


def _tables(store, mixed, tmp_path) -> dict[str, str]:
    df = with_ratios(load_frame(mixed))
    gt, _, _ = check_guarantees(str(store), out_dir=None)
    cols = ["suite", "algorithm"]
    rt = select_columns(ratio_table(with_ratios(load_frame(store)), cols), cols, "paper")
    return {
        "ratios": format_table(rt, "latex", caption=ratio_caption(list(rt.columns)), label="tab:ratios",
                               group_cols=cols),
        "ratios_all": report(str(store), fmt="latex", group_by=["top_k", "algorithm"], table="ratios",
                             columns="all", label="tab:all"),
        "mixed": report(str(mixed), fmt="latex", group_by=["algorithm"], table="ratios", label="tab:mixed"),
        "formulations": format_table(formulation_table(df), "latex", caption=FORMULATION_CAPTION,
                                     label="tab:formulations"),
        "guarantees": format_table(gt, "latex", caption="Guarantees $R \\geq \\rho R^*$.", label="tab:guarantees",
                                   group_cols=["algorithm"]),
        "proofs": report(str(store), fmt="latex", table="proofs"),
    }


def test_every_table_has_a_label_and_booktabs(store, mixed, tmp_path):
    for name, tex in _tables(store, mixed, tmp_path).items():
        assert re.search(r"\\label\{tab:[a-z_]+\}", tex), name
        for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
            assert rule in tex, (name, rule)


# ------------------------------------------------------------------ compiling
DOC = r"""\documentclass[conference]{IEEEtran}
\usepackage{booktabs}
\usepackage{siunitx}
\usepackage{amsmath}
\begin{document}
%s
\setbox0\hbox{\footnotesize\setlength{\tabcolsep}{4pt}%s}
\typeout{TABULARWIDTH=\the\wd0}
Text.
\end{document}
"""


def compile_table(tex: str, folder, name: str) -> tuple[str, float]:
    """Compile ``tex`` in a minimal IEEEtran document; return the log and the tabular's width in pt."""
    tabular = tex[tex.index(r"\begin{tabular}"):tex.index(r"\end{tabular}") + len(r"\end{tabular}")]
    (folder / f"{name}.tex").write_text(DOC % (tex, tabular))
    r = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", f"{name}.tex"], cwd=folder,
                       capture_output=True, text=True, timeout=120)
    log = (folder / f"{name}.log").read_text(errors="replace")
    assert r.returncode == 0, f"{name} does not compile:\n" + "\n".join(
        ln for ln in log.splitlines() if ln.startswith("!") or "Error" in ln)
    return log, float(re.search(r"TABULARWIDTH=([\d.]+)pt", log).group(1))


def _out(tmp_path):
    """Where compiled tables go: ``$SLIMCACHING_LATEX_OUT`` (``make check-latex`` keeps them, with a PNG of
    each page to look at) or a temporary folder."""
    keep = os.environ.get("SLIMCACHING_LATEX_OUT")
    if not keep:
        return tmp_path
    folder = Path(keep)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _pages(folder, name) -> None:
    if os.environ.get("SLIMCACHING_LATEX_OUT") and shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "110", f"{name}.pdf", name], cwd=folder, check=True)


@needs_tex
def test_every_table_compiles_in_ieeetran_and_fits(store, mixed, tmp_path):
    folder = _out(tmp_path)
    for name, tex in _tables(store, mixed, tmp_path).items():
        log, width = compile_table(tex, folder, name)
        _pages(folder, name)
        assert "Overfull \\hbox" not in log, f"{name} is wider than its column or page"
        assert "Undefined control sequence" not in log and "Missing" not in log, name
        estimate = float(re.search(r"% (\d+) pt estimated", tex).group(1))
        assert width <= estimate + 0.5, f"{name}: {width:.1f} pt measured, {estimate:.0f} pt estimated"
        limit = COLUMN_PT if r"\begin{table}[t]" in tex else PAGE_PT
        assert width <= limit, f"{name}: {width:.1f} pt in a {limit:g} pt float"
        assert (folder / f"{name}.pdf").stat().st_size > 1000


@needs_tex
@pytest.mark.slow
def test_demo_output_tables_compile(tmp_path):
    """After `make demo`: every table the demo wrote compiles and fits (`make check-latex` runs this)."""
    tables = sorted((ROOT / "demo-output").glob("*.tex"))
    if not tables:
        pytest.skip("no demo-output/*.tex (run make demo first)")
    folder = _out(tmp_path)
    for f in tables:
        tex = f.read_text()
        log, width = compile_table(tex, folder, f"demo-{f.stem}")
        _pages(folder, f"demo-{f.stem}")
        assert "Overfull \\hbox" not in log, f.name
        assert width <= (COLUMN_PT if r"\begin{table}[t]" in tex else PAGE_PT), f.name
