"""Analysis commands of the ``slimcaching`` command line.

``bench``, ``report``, ``check-guarantees``, ``worst-case``, ``figures``,
``sweeps`` and ``demo``; each parses its options and calls one function of
:mod:`slimcaching.analysis`.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..analysis.demo import DEMO_EXACT_CAP, DEMO_NODE_LIMIT, DEMO_TIME_CAP
from ..errors import InputError
from .common import add_command, int_at_least, parse_params, positive_float, seed, seed_list, show_progress

__all__ = ["register"]

MAX_JOBS = 1024
"""Worker processes of one sweep."""

EXAMPLES = {
    "bench": "slimcaching bench tiny small --algorithms greedy,successive,cloud --exact --time-limit 30 --db results.sqlite",
    "report": "slimcaching report results.sqlite --format latex --group-by family,top_k,algorithm",
    "check-guarantees": "slimcaching check-guarantees results.sqlite --out counterexamples",
    "worst-case": "slimcaching worst-case --algorithm greedy --top-k 1 --evals 500 --seed 0",
    "figures": "slimcaching figures results.sqlite --out figures",
    "sweeps": "slimcaching sweeps --out grids --seeds 0,1,2",
    "demo": "slimcaching demo --out demo-output",
}


GUARANTEE_CAPTION = (r"Claimed approximation guarantees $R(\mathrm{alg}) \geq \rho\, R(\mathrm{opt})$ against "
                     r"the stored runs in each regime: runs checked, of which against a proven optimum, the "
                     r"smallest observed ratio and its margin to the claim $\rho$, violations (below the "
                     r"claim against a proven optimum) and inconclusive runs (below it against a bound only).")


def cmd_bench(args: argparse.Namespace) -> int:
    from ..analysis.runner import run_sweep

    if args.executor == "local" and args.address:
        raise InputError("--address", ("", "only valid with --executor dask"))
    summary = run_sweep(args.inputs, args.algorithms, db=args.db, exact=args.exact, seeds=args.seeds,
                        time_limit=args.time_limit, jobs=args.jobs, executor=args.executor, address=args.address,
                        progress=not args.no_progress, limit=args.limit,
                        hard_timeout="auto" if args.hard_timeout is None else args.hard_timeout)
    print(summary.text(), file=sys.stderr)
    if not args.quiet:  # pandas is imported after the sweep: a stopped sweep does not pay for it
        from ..analysis.report import format_table, load_frame, ratio_table, with_ratios

        print(format_table(ratio_table(with_ratios(load_frame(args.db))), "markdown"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis.report import report

    text = report(args.db, fmt=args.format, group_by=args.group_by.split(","),
                  formulations=not args.no_formulations, table=args.table, columns=args.columns,
                  label=args.label, decimals=args.decimals)
    if args.output:
        from ..fileio import write_text

        write_text(text, args.output)
    else:
        sys.stdout.write(text)
    return 0


def cmd_check_guarantees(args: argparse.Namespace) -> int:
    from ..analysis.guarantees import check_guarantees
    from ..analysis.report import format_table

    table, files, notes = check_guarantees(args.db, out_dir=args.out)
    sys.stdout.write(format_table(table, args.format, group_cols=["algorithm"], label="tab:guarantees",
                                  caption=GUARANTEE_CAPTION if args.format == "latex" else None))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    for f in files:
        print(f"counterexample: {f}")
    return 1 if len(table) and int(table["violations"].sum() + table["refuted"].sum()) else 0


def cmd_worst_case(args: argparse.Namespace) -> int:
    import json

    from ..algorithms import REGISTRY
    from ..analysis.worstcase import worst_case, write_worst_case

    for name in (args.algorithm, args.reference):
        if name not in REGISTRY:
            raise InputError("--algorithm", ("", f"unknown algorithm {name!r}; valid: {', '.join(REGISTRY)}"))
    wc = worst_case(args.algorithm, top_k=args.top_k, evals=args.evals, seed=args.seed,
                    params=parse_params(args.param), reference=args.reference, restart_after=args.restart_after,
                    max_layers=args.max_layers, max_experts=args.max_experts, max_nodes=args.max_nodes,
                    max_users=args.max_users, max_size=args.max_size, time_limit=args.time_limit,
                    progress=show_progress(args))
    if wc.instance is None:
        print("no candidate was solved to proven optimality; nothing to report", file=sys.stderr)
        return 1
    out = args.output or f"worst-{args.algorithm}-k{args.top_k}-s{args.seed}.json"
    doc = write_worst_case(wc, out)
    print(json.dumps({"algorithm": wc.algorithm, "top_k": wc.top_k, "evals": wc.evals, "restarts": wc.restarts,
                      "ratio": doc["ratio"], "latency_ratio": doc["latency_ratio"], "certificate": out,
                      "claimed_guarantees": doc["claimed_guarantees"]}))
    return 0


def cmd_figures(args: argparse.Namespace) -> int:
    from ..analysis.figures import make_figures

    files = make_figures(args.db, args.out, width=args.width,
                         algorithms=[a for a in (args.algorithms or "").split(",") if a] or None)
    for f in files:
        print(f)
    if not files:
        print("no figure: the database has no data a figure can show", file=sys.stderr)
    return 0


def cmd_sweeps(args: argparse.Namespace) -> int:
    from ..analysis.sweeps import standard_sweeps

    grids = standard_sweeps(args.out, seeds=[s for s in args.seeds if s is not None])
    for name, files in grids.items():
        print(f"{name}: {len(files)} instances in {os.path.join(args.out, name)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..analysis.demo import demo

    demo(args.out, suites=args.suites.split(","), jobs=args.jobs, exact_time_limit=args.exact_time_limit,
         time_limit=args.time_limit, node_limit=args.node_limit, progress=show_progress(args))
    return 0


def register(sub) -> None:
    """Add the analysis commands to the ``slimcaching`` sub-parsers."""
    from ..analysis.columns import COLUMN_SETS, GROUP_COLUMNS, RATIO_COLUMNS, TABLES, WIDTHS

    def add(sub, name, help, func, **io):
        return add_command(sub, name, help, func, EXAMPLES[name], **io)

    ncpu = os.cpu_count() or 1

    p = add(sub, "bench", "run algorithms on instance suites into a resumable SQLite results store", cmd_bench,
            inputs=["inputs"], outputs=["db"])
    p.add_argument("inputs", nargs="+", metavar="SUITE_OR_FILES",
                   help="suite names (instances/<name>/), folders or instance files")
    p.add_argument("--algorithms", default=None, metavar="LIST",
                   help="comma-separated names, parameters as name[k=v,...] (default: the family's standard set)")
    p.add_argument("--exact", action="store_true", help="also run the exact reference")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S",
                   help="seconds per run (default: no limit)")
    p.add_argument("--hard-timeout", type=positive_float("--hard-timeout"), default=None, metavar="S",
                   help="seconds after which a run's worker process is ended and the run stored as timeout "
                        "(default: 1.05 x --time-limit + 2 s; none without --time-limit)")
    p.add_argument("--jobs", type=int_at_least("--jobs", 1, MAX_JOBS), default=ncpu, metavar="J",
                   help=f"local worker processes (default: the number of CPUs, {ncpu} here)")
    p.add_argument("--seeds", type=seed_list(), default=[0], metavar="LIST",
                   help="comma-separated seeds; none for a method's fixed order (default: 0)")
    p.add_argument("--db", default="results.sqlite", help="results database")
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="local processes, or a dask.distributed cluster")
    p.add_argument("--address", default=None, metavar="tcp://HOST:PORT",
                   help="dask scheduler, with --executor dask (default: an in-process local cluster)")
    p.add_argument("--limit", type=int_at_least("--limit", 0), default=None,
                   help="stop after this many runs (default: run all)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal)")
    p.add_argument("--quiet", action="store_true", help="do not print the ratio table at the end")

    p = add(sub, "report", "ratio, formulation and proof tables from a results database", cmd_report,
            inputs=["db"], outputs=["output"])
    p.add_argument("db", metavar="DB", help="results database written by bench or demo")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown",
                   help="latex: booktabs, siunitx S columns, \\label, table* when wider than an IEEE column")
    p.add_argument("--group-by", default="family,algorithm", metavar="COLS",
                   help="comma-separated: " + ", ".join(GROUP_COLUMNS) + "; with two or more, the first "
                        "forms row groups")
    p.add_argument("--table", choices=list(TABLES), default="all",
                   help="which table; all = ratios, then formulations when present; proofs = one row per "
                        "instance, where its reference comes from; certified = one row per instance, its best "
                        "bound and latency and each algorithm's certified ratio")
    p.add_argument("--columns", default=None, metavar="SET_OR_LIST",
                   help="ratio-table columns: " + ", ".join(COLUMN_SETS) + ", or a comma-separated list of "
                        + ", ".join(RATIO_COLUMNS) + " (default: all; paper for --format latex)")
    p.add_argument("--label", default="tab:ratios", help="LaTeX \\label of the ratio table")
    p.add_argument("--decimals", type=int_at_least("--decimals", 0, 12), default=4, help="decimals of ratios")
    p.add_argument("--no-formulations", action="store_true", help="same as --table ratios")
    p.add_argument("--output", "-o", default=None, help="file (default: stdout)")

    p = add(sub, "check-guarantees", "compare claimed approximation guarantees with stored runs "
                                     "(exit 1 on a violation)", cmd_check_guarantees, inputs=["db"], folders=["out"])
    p.add_argument("db", metavar="DB", help="results database")
    p.add_argument("--out", default="counterexamples", help="folder for counterexample files")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown", help="table format")

    p = add(sub, "worst-case", "search tiny instances minimising an algorithm's empirical ratio", cmd_worst_case,
            outputs=["output"])
    p.add_argument("--algorithm", required=True, metavar="NAME", help="registered algorithm to attack")
    p.add_argument("--top-k", type=int_at_least("--top-k", 1, 16), default=1, help="Top-K of every candidate")
    p.add_argument("--evals", type=int_at_least("--evals", 1), default=300,
                   help="candidate evaluations (algorithm and reference runs)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the search")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="algorithm parameter, repeatable (default: none)")
    p.add_argument("--reference", default="brute-force", help="exact reference: brute-force or exact")
    p.add_argument("--restart-after", type=int_at_least("--restart-after", 1), default=60,
                   help="restart from a random instance after this many evaluations without progress")
    p.add_argument("--max-layers", type=int_at_least("--max-layers", 1, 16), default=2, help="most MoE layers")
    p.add_argument("--max-experts", type=int_at_least("--max-experts", 1, 16), default=4,
                   help="most experts per layer")
    p.add_argument("--max-nodes", type=int_at_least("--max-nodes", 1, 16), default=2, help="most edge nodes")
    p.add_argument("--max-users", type=int_at_least("--max-users", 1, 16), default=2, help="most users")
    p.add_argument("--max-size", type=int_at_least("--max-size", 1, 2**20), default=2,
                   help="largest expert size (units)")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S",
                   help="seconds for the whole search (default: no limit)")
    p.add_argument("--output", "-o", default=None, help="certificate file (default: worst-<alg>-k<K>-s<seed>.json)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is shown only when stderr is a terminal)")

    p = add(sub, "figures", "latency, ratio, profile and runtime-scaling figures (PDF with TrueType fonts, PNG)",
            cmd_figures, inputs=["db"], folders=["out"])
    p.add_argument("db", metavar="DB", help="results database")
    p.add_argument("--out", default="figures", help="output folder")
    p.add_argument("--width", choices=[*WIDTHS, "auto"], default="auto",
                   help="figure width: column (3.5 in) or page (7.16 in); auto: each figure's own")
    p.add_argument("--algorithms", default=None, metavar="LIST",
                   help="comma-separated algorithms to draw, names or labels with parameters (default: all; "
                        "the optimum and bounds still come from every run)")

    p = add(sub, "sweeps", "write the instance grids behind the figures (capacity, top-k, nodes, scaling)",
            cmd_sweeps, folders=["out"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seeds", type=seed_list(), default=[0, 1, 2], metavar="LIST",
                   help="comma-separated seeds (default: 0,1,2)")

    p = add(sub, "demo", "all algorithms and the exact solver on the tiny and small suites", cmd_demo,
            folders=["out"])
    p.add_argument("--out", default="demo-output", help="output folder")
    p.add_argument("--suites", default="tiny,small", help="comma-separated suite names or folders")
    p.add_argument("--jobs", type=int_at_least("--jobs", 1, MAX_JOBS), default=None,
                   help="worker processes (default: the number of CPUs)")
    p.add_argument("--node-limit", type=int_at_least("--node-limit", 1), default=DEMO_NODE_LIMIT, metavar="N",
                   help="branch-and-bound nodes per exact solve: the deterministic work limit that decides "
                        "which instances are proven, whatever the machine's speed or load")
    p.add_argument("--exact-time-limit", type=positive_float("--exact-time-limit"), default=DEMO_EXACT_CAP,
                   metavar="S", help="wall-clock safety cap per exact solve; a run it stops is reported as "
                                     "load-dependent")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=DEMO_TIME_CAP, metavar="S",
                   help="wall-clock safety cap per heuristic run; a run it stops is reported as load-dependent")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are shown only when stderr is a terminal)")
