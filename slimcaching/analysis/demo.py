"""``slimcaching demo``: every algorithm and the exact solver on the shipped suites.

Runs the sweep on ``instances/tiny`` and ``instances/small`` (resumable: the
store is ``<out>/results.sqlite``), then prints the ratio table and writes to
``<out>/``: the ratio table (markdown, LaTeX, CSV), the proof status of every
instance (``proofs.md`` / ``proofs.csv``), the formulation table, the
guarantee check and the figures.  It states what it ran and what it left out;
a suite that is not shipped is generated (seeded) and the output says so.

Load-independent proofs
-----------------------
Which instances the exact MILP proves optimal is decided by a deterministic
work limit, ``node_limit`` branch-and-bound nodes per solve (HiGHS
``mip_max_nodes``), not by the clock: the same command gives the same proof
statuses and the same ratio table on a fast or a loaded machine.  Wall time
is only a safety cap (``exact_time_limit``); a run it stops, like a heuristic
stopped by its ``time_limit``, is counted and reported as load-dependent.
Only the runtime columns depend on the machine.

With a node limit the exact solver also skips its time-budgeted warm-start
heuristic and runs HiGHS on one thread, so its placement, status and bound
are the same on every machine (:func:`slimcaching.formulations.solve.exact`).
"""
from __future__ import annotations

import inspect
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

__all__ = ["DEMO_EXCLUDED", "DEMO_NODE_LIMIT", "DEMO_EXACT_CAP", "DEMO_TIME_CAP", "node_limit_supported",
           "demo_specs", "demo"]

#: Registered algorithms the demo leaves out, and why.
DEMO_EXCLUDED = {
    "brute-force": "exponential; the MILP 'exact' is the reference instead",
    "decompose": "its pricing MILPs stop by the clock, so its bound and placement depend on the machine's speed",
    "lns": "its MILP neighbourhoods stop by the clock, so its placement depends on the machine's speed",
}

#: Branch-and-bound nodes per exact solve in the demo.  The shipped ``small``
#: suite needs at most 4 652 nodes to prove an instance (``small-049``); see
#: ``docs/analysis.md`` for the measurement.
DEMO_NODE_LIMIT = 10_000

#: Wall-clock safety caps (seconds) per exact solve and per heuristic run in the demo; not meant to be
#: reached (``best`` needs 6 s of CPU on ``small-048``, 30 s of wall time when the machine is loaded).
DEMO_EXACT_CAP = 300.0
DEMO_TIME_CAP = 300.0


def node_limit_supported() -> bool:
    """Whether the exact solver accepts the deterministic work limit ``node_limit``."""
    from ..formulations.solve import exact

    return "node_limit" in inspect.signature(exact).parameters


def _fallback_suite(name: str, folder: Path) -> list[Path]:
    from .sweeps import sweep

    if name == "tiny":
        return sweep("capacity_fraction", [0.15, 0.3], out_dir=folder, seeds=range(3),
                     base={"layers": 2, "experts": 4, "top_k": 2, "nodes": 2, "users": 2})
    return sweep("capacity_fraction", [0.1, 0.25], out_dir=folder, seeds=range(3),
                 base={"layers": 4, "experts": 8, "top_k": 2, "nodes": 3, "users": 4})


def demo_specs(node_limit: int | None) -> dict[str, str]:
    """The algorithm specs the demo runs: ``heuristics``, ``exact`` and ``formulations``.

    ``node_limit`` (``None``: no work limit) is passed to every exact run as a
    parameter, so it is part of the run's key in the store.
    """
    from ..algorithms import algorithm_names

    limit = "" if node_limit is None else f"node_limit={int(node_limit)}"
    return {
        "heuristics": ",".join(a for a in algorithm_names() if a not in DEMO_EXCLUDED and a != "exact"),
        "exact": f"exact[{limit}]" if limit else "exact",
        "formulations": ("lp-bound[formulation=level],lp-bound[formulation=assignment],"
                         f"exact[formulation=assignment{',' + limit if limit else ''}]"),
    }


def _own_rows(df, specs: dict[str, str]):
    """The rows the demo's own specs produce (other settings in the same store are left out)."""
    from .report import algorithm_label
    from .runner import parse_algorithms
    from .store import canonical_params

    wanted = {algorithm_label(n, canonical_params(p)) for s in specs.values() for n, p in parse_algorithms(s)}
    return df[df["algorithm"].isin(wanted)]


def demo(out: str | os.PathLike = "demo-output", *, suites: Sequence[str] = ("tiny", "small"),
         jobs: int | None = None, node_limit: int | None = DEMO_NODE_LIMIT,
         exact_time_limit: float = DEMO_EXACT_CAP, time_limit: float | None = DEMO_TIME_CAP,
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
    node_limit : int, optional
        Branch-and-bound nodes per exact solve: the deterministic work limit
        that decides which instances are proven.  ``None``, or an exact solver
        without the parameter (a warning is logged), leaves only the wall clock.
    exact_time_limit : float
        Wall-clock safety cap in seconds per exact solve.
    time_limit : float, optional
        Wall-clock safety cap in seconds per heuristic run.

    Returns
    -------
    dict of str to Path
        ``ratio_md``, ``ratio_tex``, ``ratio_csv``, ``proofs_md``, ``proofs_csv``,
        ``formulations_md``, ``formulations_tex`` (when LP bounds exist) and ``guarantees_md``.

    Notes
    -----
    Every table is built from the rows of the demo's own specs
    (:func:`demo_specs`), so runs of other settings in the same store (another
    node limit, a wall-clock-only exact run) never become references.  The
    exact runs appear as ``exact`` in the tables; their node limit is in the
    captions and in ``proofs``.
    """
    from ..errors import InputError
    from ..fileio import write_text
    from .figures import make_figures
    from .guarantees import check_guarantees
    from .report import (FORMULATION_CAPTION, algorithm_label, format_table, formulation_table, load_frame,
                         proof_table, ratio_caption, ratio_table, select_columns,
                         with_ratios)
    from .runner import parse_algorithms, resolve_inputs, run_sweep

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "results.sqlite"
    jobs = jobs or os.cpu_count() or 1
    if node_limit is not None and not node_limit_supported():
        log(f"warning: this exact solver has no node_limit; which instances are proven depends on the "
            f"machine's speed (wall-clock limit {exact_time_limit:g} s per instance)")
        node_limit = None
    specs = demo_specs(node_limit)
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
    work = (f"at most {node_limit} branch-and-bound nodes per instance (wall-clock safety cap "
            f"{exact_time_limit:g} s)" if node_limit is not None else f"a {exact_time_limit:g} s limit per instance")
    log(f"algorithms: {specs['heuristics'].replace(',', ', ')}; exact MILP with {work}")
    for name, why in DEMO_EXCLUDED.items():
        log(f"left out: {name} ({why})")
    summary = run_sweep(inputs, specs["heuristics"], db=db, time_limit=time_limit, jobs=jobs, progress=progress,
                        log=log)
    log(summary.text())
    s2 = run_sweep(inputs, specs["exact"], db=db, time_limit=exact_time_limit, jobs=jobs, progress=progress,
                   log=log)
    log("exact: " + s2.text())
    first = inputs[:1]
    s3 = run_sweep(first, specs["formulations"], db=db, time_limit=exact_time_limit, jobs=jobs,
                   progress=progress, log=log)
    log(f"formulations on {first[0]}: " + s3.text())

    everything = load_frame(str(db))
    own = _own_rows(everything, specs)
    if len(own) < len(everything):
        log(f"left out {len(everything) - len(own)} stored run(s) of other algorithms or settings (e.g. another node "
            f"limit, a time-limit-only exact run, an algorithm the demo leaves out)")
    df = with_ratios(own)
    files: dict[str, Path] = {}

    def put(key: str, name: str, text: str) -> None:
        files[key] = out / name
        write_text(text, files[key])

    # proofs, per instance
    pt = proof_table(df)
    put("proofs_md", "proofs.md", format_table(pt, "markdown"))
    put("proofs_csv", "proofs.csv", format_table(pt, "csv"))
    for suite, g in pt.groupby("suite"):
        proven = int((g["reference"] == "optimum").sum())
        bound = g[g["reference"] == "bound"]
        worst = f" (largest open gap {bound['gap'].max():.2%})" if len(bound) else ""
        log(f"{suite}: {proven} of {len(g)} instances proven optimal, {len(bound)} with a bound only{worst}")
    wall = int(pt["wall_stopped"].sum())
    if wall:
        log(f"warning: {wall} run(s) were stopped by a wall clock; their results depend on the machine's "
            f"speed and load (raise --exact-time-limit or the heuristics' time limit)")
    bad = pt[~pt["consistent"]]
    if len(bad):
        log(f"warning: {len(bad)} instance(s) have a feasible gain above their proven bound or optimum: "
            + ", ".join(map(str, bad["instance"].head(5))))

    # the ratio table: heuristics and the node-limited exact reference, shown as "exact"
    exact_label = algorithm_label(*parse_algorithms(specs["exact"])[0])
    shown = df[df["algorithm"].isin(specs["heuristics"].split(",") + [exact_label])].copy()
    shown.loc[shown["algorithm"] == exact_label, "algorithm"] = "exact"
    rt = ratio_table(shown, ["suite", "algorithm"])
    md = format_table(rt, "markdown", group_cols=["suite", "algorithm"])
    log("\n" + md)
    put("ratio_md", "ratio_table.md", md)
    paper = select_columns(rt, ["suite", "algorithm"], "paper")
    nodes_tex = f"{node_limit:,}".replace(",", r"\,") if node_limit is not None else ""  # 10\,000
    limit = (f" Exact: HiGHS on the level MILP, at most {nodes_tex} branch-and-bound nodes per instance."
             if node_limit is not None else "")
    put("ratio_tex", "ratio_table.tex", format_table(paper, "latex", caption=ratio_caption(list(paper.columns))
                                                     + limit, label="tab:ratios",
                                                     group_cols=["suite", "algorithm"]))
    put("ratio_csv", "ratio_table.csv", format_table(rt, "csv"))
    ft = formulation_table(df)
    if len(ft):
        log(format_table(ft, "markdown"))
        put("formulations_md", "formulations.md", format_table(ft, "markdown"))
        nodes = (f" Every MILP run stops at {nodes_tex} branch-and-bound nodes." if node_limit is not None
                 else "")
        put("formulations_tex", "formulations.tex", format_table(ft, "latex", caption=FORMULATION_CAPTION + nodes,
                                                                 label="tab:formulations"))
    gt, cex, notes = check_guarantees(str(db), out_dir=out / "counterexamples", df=own)
    put("guarantees_md", "guarantees.md", format_table(gt, "markdown") + "".join(f"\n- {n}" for n in notes) + "\n")
    log(f"guarantees: {int(gt['violations'].sum()) if len(gt) else 0} violation(s), "
        f"{int(gt['verified'].sum()) if len(gt) else 0} verified of {int(gt['checked'].sum()) if len(gt) else 0} "
        f"checked run(s), {int(gt['refuted'].sum()) if len(gt) else 0} conjecture(s) refuted; "
        f"{len(cex)} counterexample file(s)")
    figs = make_figures(shown, out / "figures")
    log(f"figures: {len(figs)} files in {out / 'figures'}")
    settings = {"suites": list(suites), "node_limit": node_limit, "exact_time_limit": exact_time_limit,
                "time_limit": time_limit, "specs": specs}
    put("settings", "settings.json", json.dumps(settings, indent=1) + "\n")
    log(f"demo finished in {time.perf_counter() - t0:.1f} s; outputs in {out}/")
    sys.stdout.flush()
    return files
