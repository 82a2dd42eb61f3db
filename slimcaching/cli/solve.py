"""Command-line group for solving: ``solve``, ``evaluate``, ``export``.

Registered by :func:`slimcaching.cli.main.build_parser`; each command parses
its options and calls one library function.
"""
from __future__ import annotations

import argparse

from .common import add_command, emit, int_at_least, number, parse_params, positive_float, seed

__all__ = ["register"]

EXAMPLES = {
    "evaluate": "slimcaching evaluate inst.json placement.json",
    "solve": "slimcaching solve inst.json --algorithm successive --output placement.json",
    "export": "slimcaching export inst.json --formulation level --format mps --output model.mps",
}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..instances.io import read_instance, read_placement
    from ..objective import evaluate

    inst = read_instance(args.instance)
    placement, _ = read_placement(args.placement, inst)
    ev = evaluate(inst, placement)
    emit(ev.to_dict(inst), None, indent=None)
    return 0 if ev.feasible else 1


def cmd_solve(args: argparse.Namespace) -> int:
    from ..algorithms import run
    from ..instances.io import read_instance
    from ..solvers import SolveInterrupted

    inst = read_instance(args.instance)
    params = parse_params(args.param)
    for opt in ("formulation", "mip_gap", "eps", "order", "layer_solver", "enumeration", "node_limit", "solver"):
        v = getattr(args, opt, None)
        if v is not None:
            params[opt] = v
    if args.solver_option:
        params["solver_options"] = list(args.solver_option)
    try:
        res = run(inst, args.algorithm, seed=args.seed, time_limit=args.time_limit, polish=args.polish, **params)
    except SolveInterrupted as exc:  # Ctrl-C inside a solve: keep what it found, then exit 130
        if exc.result is not None:
            emit(exc.result.to_placement_dict(inst), args.output)
        raise
    emit(res.to_placement_dict(inst), args.output)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..formulations.export import export_model
    from ..instances.io import read_instance

    inst = read_instance(args.instance)
    export_model(inst, formulation=args.formulation, fmt=args.format, path=args.output)
    return 0


def register(sub) -> None:
    """Add the solving commands to the ``slimcaching`` parser."""
    from ..algorithms import algorithm_names

    p = add_command(sub, "solve", "run an algorithm and write the placement", cmd_solve,
                    EXAMPLES["solve"], inputs=["instance"], outputs=["output"])
    p.add_argument("instance")
    p.add_argument("--algorithm", required=True, metavar="NAME",
                   help="one of: " + ", ".join(algorithm_names()))
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S")
    p.add_argument("--seed", type=seed(), default=None)
    p.add_argument("--formulation", choices=["level", "assignment"], default=None,
                   help="for --algorithm exact (default level)")
    p.add_argument("--mip-gap", type=number("--mip-gap", 0, 1, high_open=True), default=None, metavar="G",
                   help="for --algorithm exact: relative gap in [0, 1)")
    p.add_argument("--node-limit", type=int_at_least("--node-limit", 1), default=None, metavar="N",
                   help="for --algorithm exact: stop after N branch-and-bound nodes (a limit on work, "
                        "reproducible on any machine; --time-limit stays a safety cap)")
    p.add_argument("--solver", default=None, metavar="NAME",
                   help="for --algorithm exact: the MILP solver, through Pyomo (default highs; e.g. appsi_highs, "
                        "gurobi, cplex, scip, cbc, glpk, whichever is installed)")
    p.add_argument("--solver-option", action="append", default=None, metavar="KEY=VALUE",
                   help="for --algorithm exact: an option passed to the solver under its own name (repeatable)")
    p.add_argument("--eps", type=number("--eps", 0, 1, low_open=True, high_open=True), default=None,
                   help="for --algorithm maxconv: in (0, 1)")
    p.add_argument("--polish", action="store_true", help="finish with local search (add/drop/swap/move)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="extra algorithm parameter")
    p.add_argument("--output", "-o", help="placement file; stdout when omitted")

    p = add_command(sub, "evaluate", "evaluate a placement: latency, reduction, feasibility (exit 1 if over capacity)",
                    cmd_evaluate, EXAMPLES["evaluate"], inputs=["instance", "placement"])
    p.add_argument("instance")
    p.add_argument("placement")

    p = add_command(sub, "export", "write a MILP formulation for any solver", cmd_export, EXAMPLES["export"],
                    inputs=["instance"], outputs=["output"])
    p.add_argument("instance")
    p.add_argument("--formulation", choices=["assignment", "level"], required=True)
    p.add_argument("--format", choices=["lp", "mps", "nl", "gms"], required=True)
    p.add_argument("--output", "-o", required=True)
