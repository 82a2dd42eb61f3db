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
    from ..errors import InputError
    from .generator import generate_moe2, generate_moe2_gated

    from .instance import MAX_EXPERTS

    if args.quality == "table" and args.experts > MAX_EXPERTS:
        raise InputError("--experts", ("", f"must be <= {MAX_EXPERTS} with --quality table (a table has 2**M "
                                           f"entries per category), got {args.experts}; --quality noisy-or or "
                                           "gated allows more"))
    if args.quality != "gated" and (args.top_k is not None or args.energy_accounting != "pool"):
        raise InputError("--top-k", ("", "--top-k and --energy-accounting per-query need --quality gated"))
    if args.quality == "gated":
        inst = generate_moe2_gated(args.seed, experts=args.experts, categories=args.categories,
                                   energy_fraction=args.energy_fraction, orin_fraction=args.orin_fraction,
                                   queries=args.queries, top_k=args.top_k, energy_accounting=args.energy_accounting)
    else:
        inst = generate_moe2(args.seed, experts=args.experts, categories=args.categories,
                             energy_fraction=args.energy_fraction, orin_fraction=args.orin_fraction,
                             model=args.quality == "noisy-or")
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
    from .instance import MAX_EXPERTS, MAX_MODEL_EXPERTS

    p = add_command(sub, "moe2", "MoE² edge LLM expert selection: generate, solve, evaluate", lambda a: 2,
                    "slimcaching moe2 generate --seed 1 --output moe2.json && "
                    "slimcaching moe2 solve moe2.json --algorithm dmo")
    acts = p.add_subparsers(dest="moe2_command", required=True, parser_class=type(p))

    def action(name: str, help: str, func: Callable[[argparse.Namespace], int], **io) -> argparse.ArgumentParser:
        return add_command(acts, name, help, func, _EXAMPLES[name], **io)

    q = action("generate", "generate a seeded MoE² instance (Jetson AGX Orin and RTX 4090 class servers)",
               cmd_generate, outputs=["output"])
    q.add_argument("--seed", type=seed(), required=True, help="seed of every random choice of the generator")
    q.add_argument("--experts", type=int_at_least("--experts", 1, MAX_MODEL_EXPERTS), default=8, metavar="M",
                   help=f"number of LLM experts: at most {MAX_EXPERTS} with --quality table, {MAX_MODEL_EXPERTS} "
                        "otherwise")
    q.add_argument("--categories", type=int_at_least("--categories", 1), default=3, metavar="C",
                   help="number of application categories")
    q.add_argument("--energy-fraction", type=positive_float("--energy-fraction"), default=0.3,
                   help="energy budget as a fraction of the energy of all latency-feasible experts")
    q.add_argument("--orin-fraction", type=fraction("--orin-fraction"), default=0.5,
                   help="share of Jetson AGX Orin class servers, in [0, 1]")
    q.add_argument("--quality", choices=["table", "noisy-or", "gated"], default="table",
                   help="table: noisy-OR tabulated over all 2**M subsets (moe2-instance/1); noisy-or: the same "
                        "as a model; gated: a softmax gate learned from synthetic per-query correctness of "
                        "complementary experts (not monotone, not submodular)")
    q.add_argument("--queries", type=int_at_least("--queries", 1), default=48,
                   help="validation queries per category with --quality gated")
    q.add_argument("--top-k", type=int_at_least("--top-k", 1), default=None, metavar="K",
                   help="per-query top-k routing inside the pool, with --quality gated (default: every member runs)")
    q.add_argument("--energy-accounting", choices=["pool", "per-query"], default="pool",
                   help="charge every pool member (pool) or the experts that run per query (per-query)")
    q.add_argument("--output", "-o", help="instance file, .json or .json.gz (default: stdout)")

    q = action("solve", "select experts per category; prints one JSON object (also a moe2-selection/1 file)",
               cmd_solve, inputs=["instance"], outputs=["output"])
    q.add_argument("instance", help="MoE² instance file")
    q.add_argument("--algorithm", required=True, choices=list(MOE2_ALGORITHMS), metavar="NAME",
                   help="one of: " + ", ".join(MOE2_ALGORITHMS))
    q.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S",
                   help="seconds for the solve (default: no limit)")
    q.add_argument("--seed", type=seed(), default=None, help="seed of the method's random choices (default: none)")
    q.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="extra algorithm parameter, repeatable (default: none)")
    q.add_argument("--output", "-o", help="result file (default: stdout)")

    q = action("evaluate", "objective, energy, per-category latency of a selection (exit 1 if a budget is violated)",
               cmd_evaluate, inputs=["instance", "selection"])
    q.add_argument("instance", help="MoE² instance file")
    q.add_argument("selection", help="selection file (moe2-selection/1)")
