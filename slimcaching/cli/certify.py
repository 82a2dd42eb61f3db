"""Command ``certify``: a placement with a proven bound within a time budget.

Registered by :func:`slimcaching.cli.main.build_parser`; parses options and
calls :func:`slimcaching.algorithms.certify.certify`.
"""
from __future__ import annotations

import argparse

from .common import add_command, emit, number, positive_float, seed

__all__ = ["register"]

EXAMPLE = "slimcaching certify instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json --time-limit 600"


def cmd_certify(args: argparse.Namespace) -> int:
    from ..algorithms.certify import certify, check_start
    from ..instances.io import read_instance, read_placement
    from ..solvers import SolveInterrupted

    inst = read_instance(args.instance)
    start = None
    if args.start is not None:
        start, _ = read_placement(args.start, inst)
        check_start(inst, start, args.start)
    try:
        cert = certify(inst, time_limit=args.time_limit, seed=args.seed, work_limit=args.work_limit, start=start,
                       gap=args.gap)
    except SolveInterrupted as exc:  # Ctrl-C: write what was proven and found so far, then exit 130
        emit(exc.result.to_dict(inst), args.output, indent=None)
        raise
    emit(cert.to_dict(inst), args.output, indent=None)
    return 0


def register(sub) -> None:
    """Add ``certify`` to the ``slimcaching`` parser."""
    p = add_command(sub, "certify", "prove a bound on the optimum and find a placement within a time budget; "
                                    "prints latency, bound, gap, status, the method of each, and the placement",
                    cmd_certify, EXAMPLE, inputs=["instance", "start"], outputs=["output"])
    p.add_argument("instance", help="instance file")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=600.0, metavar="S",
                   help="seconds for everything (with --work-limit: the hard wall on top)")
    p.add_argument("--work-limit", type=positive_float("--work-limit"), default=None, metavar="W",
                   help="stop every stage at a count (column-generation rounds, branch-and-bound nodes, LNS "
                        "steps; W times the unit caps) instead of a share of the time, so the result does not "
                        "depend on machine speed; the caps are in info.work_limits (default: none, stages "
                        "stop at shares of --time-limit)")
    p.add_argument("--gap", type=number("--gap", 0.0, 1.0, high_open=True), default=0.0, metavar="G",
                   help="stop once the certified gap is at most G (a fraction: 0.001 is 0.1 %%); the exact stages "
                        "then search only below the incumbent's latency times 1 - G, a much smaller tree "
                        "(default: 0, prove the optimum)")
    p.add_argument("--start", metavar="PLACEMENT", default=None,
                   help="a placement file (slimcaching-placement/1) to start from, e.g. the one deployed today: "
                        "the certificate's latency is never above its latency, and info.start_gap is its own proven gap "
                        "(default: none)")
    p.add_argument("--seed", type=seed(), default=0, help="seed of the search's random choices")
    p.add_argument("--output", "-o", help="JSON file (default: stdout)")
