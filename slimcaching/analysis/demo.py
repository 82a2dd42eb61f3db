"""``slimcaching demo``: every algorithm and the exact solver on the shipped suites.

Runs the sweep on ``instances/tiny`` and ``instances/small`` (resumable: the
store is ``<out>/results.sqlite``), then prints the ratio table and writes to
``<out>/``: the ratio table (markdown, LaTeX, CSV), the formulation table, the
guarantee check and the figures.  It states what it ran and what it left out;
a suite that is not shipped is generated (seeded) and the output says so.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["DEMO_EXCLUDED", "demo"]

#: Registered algorithms the demo leaves out, and why.
DEMO_EXCLUDED = {"brute-force": "exponential; the MILP 'exact' is the reference instead"}


def _fallback_suite(name: str, folder: Path) -> list[Path]:
    from .sweeps import sweep

    if name == "tiny":
        return sweep("capacity_fraction", [0.15, 0.3], out_dir=folder, seeds=range(3),
                     base={"layers": 2, "experts": 4, "top_k": 2, "nodes": 2, "users": 2})
    return sweep("capacity_fraction", [0.1, 0.25], out_dir=folder, seeds=range(3),
                 base={"layers": 4, "experts": 8, "top_k": 2, "nodes": 3, "users": 4})


def demo(out: str | os.PathLike = "demo-output", *, suites: Sequence[str] = ("tiny", "small"),
         jobs: int | None = None, exact_time_limit: float = 20.0, time_limit: float | None = 30.0,
         progress: bool = True, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run the demo; return the files written by name.

    Parameters
    ----------
    out : path
        Output folder (created).
    suites : sequence of str
        Suite names resolved like ``slimcaching bench`` does.
    jobs : int, optional
        Worker processes (default: the number of CPUs).
    exact_time_limit : float
        Seconds per exact MILP solve; unproven runs are reported with their bound.
    time_limit : float, optional
        Seconds per heuristic run.
    """
    from ..algorithms import algorithm_names
    from ..errors import InputError
    from ..fileio import write_text
    from .figures import make_figures
    from .guarantees import check_guarantees
    from .report import format_table, formulation_table, load_frame, ratio_table, with_ratios
    from .runner import resolve_inputs, run_sweep

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "results.sqlite"
    jobs = jobs or os.cpu_count() or 1
    algs = [a for a in algorithm_names() if a not in DEMO_EXCLUDED and a != "exact"]
    inputs: list[str] = []
    for s in suites:
        try:
            resolve_inputs([s])
            inputs.append(s)
        except InputError:
            folder = out / "instances" / s
            files = _fallback_suite(s, folder)
            log(f"suite {s!r} is not shipped here; generated {len(files)} seeded instances in {folder}")
            inputs.append(str(folder))
    log(f"algorithms: {', '.join(algs)}; exact MILP with a {exact_time_limit:g} s limit per instance")
    for name, why in DEMO_EXCLUDED.items():
        log(f"left out: {name} ({why})")
    spec = ",".join(algs)
    summary = run_sweep(inputs, spec, db=db, exact=False, time_limit=time_limit, jobs=jobs, progress=progress,
                        log=log)
    log(summary.text())
    # the exact reference and the formulation comparison, with their own time limit
    first = inputs[:1]
    s2 = run_sweep(inputs, "exact", db=db, time_limit=exact_time_limit, jobs=jobs, progress=progress, log=log)
    log("exact: " + s2.text())
    s3 = run_sweep(first, "lp-bound[formulation=level],lp-bound[formulation=assignment],"
                          "exact[formulation=assignment]", db=db, time_limit=exact_time_limit, jobs=jobs,
                   progress=progress, log=log)
    log(f"formulations on {first[0]}: " + s3.text())

    df = with_ratios(load_frame(str(db)))
    files: dict[str, Path] = {}

    def put(key: str, name: str, text: str) -> None:
        files[key] = out / name
        write_text(text, files[key])

    rt = ratio_table(df, ["suite", "algorithm"])
    md = format_table(rt, "markdown")
    log("\n" + md)
    put("ratio_md", "ratio_table.md", md)
    put("ratio_tex", "ratio_table.tex", format_table(rt, "latex", caption="Empirical ratio R(alg)/R(opt) and latency "
                                                                          "ratio T(alg)/T(opt) per suite and algorithm."))
    put("ratio_csv", "ratio_table.csv", format_table(rt, "csv"))
    ft = formulation_table(df)
    if len(ft):
        log(format_table(ft, "markdown"))
        put("formulations_md", "formulations.md", format_table(ft, "markdown"))
        put("formulations_tex", "formulations.tex", format_table(ft, "latex", caption="MILP formulations: LP bounds, "
                                                                                    "root gaps, solve times."))
    gt, cex, notes = check_guarantees(str(db), out_dir=out / "counterexamples", df=df)
    put("guarantees_md", "guarantees.md", format_table(gt, "markdown") + "".join(f"\n- {n}" for n in notes) + "\n")
    log(f"guarantees: {int(gt['violations'].sum()) if len(gt) else 0} violation(s) "
        f"in {int(gt['checked'].sum()) if len(gt) else 0} checked run(s); {len(cex)} counterexample file(s)")
    figs = make_figures(str(db), out / "figures")
    log(f"figures: {len(figs)} files in {out / 'figures'}")
    log(f"demo finished in {time.perf_counter() - t0:.1f} s; outputs in {out}/")
    sys.stdout.flush()
    return files
