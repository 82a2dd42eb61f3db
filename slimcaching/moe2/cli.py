"""``slimcaching moe2 ...``: the MoE² edge expert-selection family on the command line.

Same habits as the caching commands: files in, one JSON object out, exit 2
with one line on stderr for malformed input, unknown algorithm or bad option.

* ``slimcaching moe2 generate --seed S [--experts M] [--categories C] --output FILE``
* ``slimcaching moe2 solve INSTANCE --algorithm NAME [--time-limit S] [--seed S] [--output FILE]``
* ``slimcaching moe2 evaluate INSTANCE SELECTION`` (exit 0 feasible, 1 a budget is violated)
"""
from __future__ import annotations

import argparse
from typing import Callable

from ..cli.common import add_command, emit, fraction, int_at_least, parse_params, positive_float, seed

__all__ = ["register"]

_EXAMPLES = {
    "generate": "slimcaching moe2 generate --seed 1 --experts 8 --categories 3 --output moe2.json",
    "solve": "slimcaching moe2 solve moe2.json --algorithm dmo --output selection.json",
    "evaluate": "slimcaching moe2 evaluate moe2.json selection.json",
}


def cmd_generate(args: argparse.Namespace) -> int:
    from .generator import generate_moe2

    inst = generate_moe2(args.seed, experts=args.experts, categories=args.categories,
                         energy_fraction=args.energy_fraction, orin_fraction=args.orin_fraction)
    if args.output:
        from .instance import write_moe2_instance

        write_moe2_instance(inst, args.output)
    else:
        emit(inst.to_dict(), None, indent=None)
    return 0


def cmd_solve(args: argparse.Namespace) -> int:
    from .algorithms import get_moe2_algorithm
    from .instance import read_moe2_instance

    from ..solvers import SolveInterrupted

    inst = read_moe2_instance(args.instance)
    fn = get_moe2_algorithm(args.algorithm)
    try:
        res = fn(inst, seed=args.seed, time_limit=args.time_limit, **parse_params(args.param))
    except SolveInterrupted as exc:  # Ctrl-C inside the MILP: keep what it found, then exit 130
        if exc.result is not None:
            emit(exc.result.to_dict(), args.output, indent=None)
        raise
    emit(res.to_dict(), args.output, indent=None)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .instance import evaluate_moe2, read_moe2_instance, read_selection

    inst = read_moe2_instance(args.instance)
    masks = read_selection(args.selection, inst)
    ev = evaluate_moe2(inst, masks)
    emit(ev.to_dict(inst, masks), None, indent=None)
    return 0 if ev.feasible else 1


def register(sub) -> None:
    """Add the ``moe2`` command (sub-actions generate / solve / evaluate) to the top-level subparsers."""
    from .algorithms import MOE2_ALGORITHMS
    from .instance import MAX_EXPERTS

    p = add_command(sub, "moe2", "MoE² edge LLM expert selection: generate, solve, evaluate", lambda a: 2,
                    "slimcaching moe2 generate --seed 1 --output moe2.json && "
                    "slimcaching moe2 solve moe2.json --algorithm dmo")
    acts = p.add_subparsers(dest="moe2_command", required=True, parser_class=type(p))

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int], **io) -> argparse.ArgumentParser:
        return add_command(acts, name, help, func, _EXAMPLES[name], **io)

    q = action("generate", "generate a seeded MoE² instance (Jetson AGX Orin and RTX 4090 class servers)",
               cmd_generate, outputs=["output"])
    q.add_argument("--seed", type=seed(), required=True)
    q.add_argument("--experts", type=int_at_least("--experts", 1, MAX_EXPERTS), default=8, metavar="M",
                   help="number of LLM experts, at most 16 (default 8)")
    q.add_argument("--categories", type=int_at_least("--categories", 1), default=3, metavar="C",
                   help="number of application categories (default 3)")
    q.add_argument("--energy-fraction", type=positive_float("--energy-fraction"), default=0.3,
                   help="energy budget as a fraction of the energy of all latency-feasible experts (default 0.3)")
    q.add_argument("--orin-fraction", type=fraction("--orin-fraction"), default=0.5,
                   help="share of Jetson AGX Orin class servers (default 0.5)")
    q.add_argument("--output", "-o", help="instance file (.json or .json.gz); stdout when omitted")

    q = action("solve", "select experts per category; prints one JSON object (also a moe2-selection/1 file)",
               cmd_solve, inputs=["instance"], outputs=["output"])
    q.add_argument("instance")
    q.add_argument("--algorithm", required=True, choices=list(MOE2_ALGORITHMS), metavar="NAME",
                   help="one of: " + ", ".join(MOE2_ALGORITHMS))
    q.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S")
    q.add_argument("--seed", type=seed(), default=None)
    q.add_argument("--param", action="append", metavar="KEY=VALUE", help="extra algorithm parameter")
    q.add_argument("--output", "-o", help="result file; stdout when omitted")

    q = action("evaluate", "objective, energy, per-category latency of a selection (exit 1 if a budget is violated)",
               cmd_evaluate, inputs=["instance", "selection"])
    q.add_argument("instance")
    q.add_argument("selection")
