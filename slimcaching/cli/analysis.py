"""Analysis commands of the ``slimcaching`` command line.

``bench``, ``report``, ``check-guarantees``, ``worst-case``, ``figures``,
``sweeps`` and ``demo``; each parses its options and calls one function of
:mod:`slimcaching.analysis`.
"""
from __future__ import annotations

import argparse
import os
import sys
from ..errors import InputError
from .common import add_command, int_at_least, parse_params, positive_float, seed, seed_list

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


def cmd_bench(args: argparse.Namespace) -> int:
    from ..analysis.report import format_table, load_frame, ratio_table, with_ratios
    from ..analysis.runner import run_sweep

    if args.executor == "local" and args.address:
        raise InputError("--address", ("", "only valid with --executor dask"))
    summary = run_sweep(args.inputs, args.algorithms, db=args.db, exact=args.exact, seeds=args.seeds,
                        time_limit=args.time_limit, jobs=args.jobs, executor=args.executor, address=args.address,
                        progress=not args.no_progress, limit=args.limit)
    print(summary.text(), file=sys.stderr)
    if not args.quiet:
        print(format_table(ratio_table(with_ratios(load_frame(args.db))), "markdown"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from ..analysis.report import report

    text = report(args.db, fmt=args.format, group_by=args.group_by.split(","),
                  formulations=not args.no_formulations, table=args.table)
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
    sys.stdout.write(format_table(table, args.format))
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    for f in files:
        print(f"counterexample: {f}")
    return 1 if len(table) and int(table["violations"].sum()) else 0


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
                    progress=not args.no_progress)
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

    files = make_figures(args.db, args.out)
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
         progress=not args.no_progress)
    return 0


def register(sub) -> None:
    """Add the analysis commands to the ``slimcaching`` sub-parsers."""
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
                   help="seconds per run")
    p.add_argument("--jobs", type=int_at_least("--jobs", 1, MAX_JOBS), default=ncpu, metavar="J",
                   help=f"local worker processes (default {ncpu})")
    p.add_argument("--seeds", type=seed_list(), default=[0], metavar="LIST", help="comma-separated seeds (default 0)")
    p.add_argument("--db", default="results.sqlite", help="results database (default results.sqlite)")
    p.add_argument("--executor", choices=["local", "dask"], default="local")
    p.add_argument("--address", default=None, metavar="tcp://HOST:PORT", help="dask scheduler (with --executor dask; without it an in-process local cluster)")
    p.add_argument("--limit", type=int_at_least("--limit", 0), default=None, help="stop after this many runs")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="do not print the ratio table at the end")

    p = add(sub, "report", "ratio and formulation tables from a results database", cmd_report,
            inputs=["db"], outputs=["output"])
    p.add_argument("db", metavar="DB")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")
    p.add_argument("--group-by", default="family,algorithm", metavar="COLS",
                   help="comma-separated: family, suite, algorithm, top_k, L, N, U, cap_frac, seed, instance_name")
    p.add_argument("--table", choices=["all", "ratios", "formulations", "certified"], default="all",
                   help="which table (default all: ratios, then formulations when present)")
    p.add_argument("--no-formulations", action="store_true", help="same as --table ratios")
    p.add_argument("--output", "-o", default=None, help="file (stdout when omitted)")

    p = add(sub, "check-guarantees", "compare claimed approximation guarantees with stored runs "
                                     "(exit 1 on a violation)", cmd_check_guarantees, inputs=["db"], folders=["out"])
    p.add_argument("db", metavar="DB")
    p.add_argument("--out", default="counterexamples", help="folder for counterexample files")
    p.add_argument("--format", choices=["markdown", "latex", "csv"], default="markdown")

    p = add(sub, "worst-case", "search tiny instances minimising an algorithm's empirical ratio", cmd_worst_case,
            outputs=["output"])
    p.add_argument("--algorithm", required=True, metavar="NAME")
    p.add_argument("--top-k", type=int_at_least("--top-k", 1, 16), default=1)
    p.add_argument("--evals", type=int_at_least("--evals", 1), default=300)
    p.add_argument("--seed", type=seed(), default=0)
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="algorithm parameter")
    p.add_argument("--reference", default="brute-force", help="exact reference (brute-force or exact)")
    p.add_argument("--restart-after", type=int_at_least("--restart-after", 1), default=60)
    p.add_argument("--max-layers", type=int_at_least("--max-layers", 1, 16), default=2)
    p.add_argument("--max-experts", type=int_at_least("--max-experts", 1, 16), default=4)
    p.add_argument("--max-nodes", type=int_at_least("--max-nodes", 1, 16), default=2)
    p.add_argument("--max-users", type=int_at_least("--max-users", 1, 16), default=2)
    p.add_argument("--max-size", type=int_at_least("--max-size", 1, 2**20), default=2)
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S",
                   help="seconds for the whole search")
    p.add_argument("--output", "-o", default=None, help="certificate file (default worst-<alg>-k<K>-s<seed>.json)")
    p.add_argument("--no-progress", action="store_true")

    p = add(sub, "figures", "latency, ratio and runtime-scaling figures (PNG and PDF)", cmd_figures,
            inputs=["db"], folders=["out"])
    p.add_argument("db", metavar="DB")
    p.add_argument("--out", default="figures", help="output folder")

    p = add(sub, "sweeps", "write the instance grids behind the figures (capacity, top-k, nodes, scaling)",
            cmd_sweeps, folders=["out"])
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seeds", type=seed_list(), default=[0, 1, 2], metavar="LIST")

    p = add(sub, "demo", "all algorithms and the exact solver on the tiny and small suites", cmd_demo,
            folders=["out"])
    p.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--suites", default="tiny,small")
    p.add_argument("--jobs", type=int_at_least("--jobs", 1, MAX_JOBS), default=None)
    p.add_argument("--exact-time-limit", type=positive_float("--exact-time-limit"), default=20.0, metavar="S")
    p.add_argument("--no-progress", action="store_true")
