"""The ``slimcaching`` command line.

Thin by design: each command parses its options and calls one library
function.  Any :class:`~slimcaching.errors.InputError` (malformed file, unknown
algorithm, bad option value) becomes one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from .errors import InputError

__all__ = ["main", "build_parser"]

EXAMPLES = {
    "generate": "slimcaching generate --model mixtral-8x7b --network wifi-rtx --nodes 4 --users 4 --seed 1 -o inst.json",
    "validate": "slimcaching validate inst.json",
    "evaluate": "slimcaching evaluate inst.json placement.json",
    "solve": "slimcaching solve inst.json --algorithm successive --output placement.json",
    "export": "slimcaching export inst.json --formulation level --format mps --output model.mps",
    "models": "slimcaching models --json",
    "from-trace": ("slimcaching from-trace instances/traces/sample-trace.csv --model mixtral-8x7b "
                   "--network wifi-rtx --seed 0 -o from-trace.json"),
    "suite": "slimcaching suite generate tiny --out /tmp/tiny",
    "moe2": "slimcaching moe2 generate --seed 1 --output moe2.json && slimcaching moe2 solve moe2.json --algorithm dmo",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def _positive_float(name: str) -> Callable[[str], float]:
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {s!r}")
        return v
    return conv


def _int_at_least(name: str, low: int) -> Callable[[str], int]:
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        return v
    return conv


def _parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``--param key=value`` pairs; values are parsed as JSON when they can be."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise InputError("--param", ("", f"expected key=value, got {item!r}"))
        k, v = item.split("=", 1)
        try:
            out[k.replace("-", "_")] = json.loads(v)
        except json.JSONDecodeError:
            out[k.replace("-", "_")] = v
    return out


def _emit(obj: Any, output: str | None) -> None:
    if output:
        from .instances.io import write_json

        write_json(obj, output)
    else:
        json.dump(obj, sys.stdout, indent=1)
        sys.stdout.write("\n")


# ------------------------------------------------------------------ commands
def cmd_generate(args: argparse.Namespace) -> int:
    if args.model:
        from .instances.suites import model_instance

        inst = model_instance(args.model, network=args.network, nodes=args.nodes, users=args.users,
                              capacity=args.capacity, device_capacity=args.device_capacity, seed=args.seed,
                              precision=args.precision,
                              layers=args.layers, experts=args.experts, top_k=args.top_k,
                              devices=args.devices, skew=args.skew, specialisation=args.specialisation,
                              tasks=args.tasks, topics=args.topics, topic_strength=args.topic_strength,
                              tokens=args.tokens, name=args.name)
    else:
        from .instances.generators import random_instance

        inst = random_instance(layers=args.layers or 4, experts=args.experts or 8, top_k=args.top_k or 2,
                               nodes=args.nodes, users=args.users, seed=args.seed,
                               capacity_fraction=args.capacity_fraction, expert_size=args.expert_size,
                               skew=args.skew, tokens=args.tokens, name=args.name)
    _emit(inst.to_dict(), args.output)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from .instances.io import read_instance

    inst = read_instance(args.instance)
    print(json.dumps({"valid": True, "name": inst.name, "layers": inst.L, "nodes": inst.N,
                      "users": inst.U, "sets": inst.n_sets, "hash": inst.content_hash()}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .instances.io import read_instance, read_placement
    from .objective import evaluate

    inst = read_instance(args.instance)
    placement, _ = read_placement(args.placement, inst)
    ev = evaluate(inst, placement)
    print(json.dumps(ev.to_dict(inst)))
    return 0 if ev.feasible else 1


def cmd_solve(args: argparse.Namespace) -> int:
    from .algorithms import run
    from .instances.io import read_instance

    inst = read_instance(args.instance)
    params = _parse_params(args.param)
    for opt in ("formulation", "mip_gap", "eps", "order", "layer_solver", "enumeration"):
        v = getattr(args, opt, None)
        if v is not None:
            params[opt] = v
    res = run(inst, args.algorithm, seed=args.seed, time_limit=args.time_limit, polish=args.polish, **params)
    _emit(res.to_placement_dict(inst), args.output)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .formulations.export import export_model
    from .instances.io import read_instance

    inst = read_instance(args.instance)
    export_model(inst, formulation=args.formulation, fmt=args.format, path=args.output)
    return 0


# ------------------------------------------------------------------ parser
def _add(sub, name: str, help: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help,
                       epilog=f"example:\n  {EXAMPLES[name]}" if name in EXAMPLES else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    from .algorithms import algorithm_names

    parser = _Parser(prog="slimcaching", description="Expert caching for distributed MoE inference.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = _add(sub, "generate", "generate a seeded instance: synthetic, or a real architecture (--model) "
             "on an edge-network preset (--network)", cmd_generate)
    p.add_argument("--model", default=None, metavar="NAME",
                   help="catalog architecture, case-insensitive (see `slimcaching models`)")
    p.add_argument("--network", default="wifi-rtx", metavar="PRESET",
                   help="with --model: wifi-rtx, 5g-mec, wifi-jetson or 5g-device")
    p.add_argument("--layers", type=_int_at_least("--layers", 1), default=None,
                   help="MoE layers (default 4; with --model: keep only the first LAYERS)")
    p.add_argument("--experts", type=_int_at_least("--experts", 1), default=None,
                   help="experts per layer (default 8; with --model: keep only the first EXPERTS)")
    p.add_argument("--top-k", type=_int_at_least("--top-k", 1), default=None,
                   help="Top-K (default 2; with --model: the model's, or lower)")
    p.add_argument("--nodes", type=_int_at_least("--nodes", 1), default=3, help="edge servers")
    p.add_argument("--users", type=_int_at_least("--users", 1), default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--capacity", default=None,
                   help="with --model: per-server storage as a fraction (0.25, 25%%), size units (1008) "
                        "or bytes (24GiB); default: the preset's storage")
    p.add_argument("--device-capacity", default=None,
                   help="with --model and devices: device storage, same forms as --capacity")
    p.add_argument("--precision", default="bf16", help="with --model: bf16, int8, int4 or mixed (per layer)")
    p.add_argument("--devices", action=argparse.BooleanOptionalAction, default=None,
                   help="with --model: add (or drop) one device node per user")
    p.add_argument("--capacity-fraction", type=_positive_float("--capacity-fraction"), default=0.25,
                   help="without --model: each node stores this fraction of the model")
    p.add_argument("--expert-size", type=_int_at_least("--expert-size", 1), default=1,
                   help="without --model: expert size in units")
    p.add_argument("--skew", type=float, default=1.0, help="Zipf exponent of expert popularity")
    p.add_argument("--specialisation", type=float, default=0.5,
                   help="with --model: weight of the per-task popularity profile (0..1)")
    p.add_argument("--tasks", type=_int_at_least("--tasks", 1), default=2, help="with --model: task groups")
    p.add_argument("--topics", type=_int_at_least("--topics", 0), default=0,
                   help="with --model: latent topics per layer (co-activation beyond Plackett-Luce)")
    p.add_argument("--topic-strength", type=float, default=2.0, help="with --model: log-boost of a topic's experts")
    p.add_argument("--tokens", type=_int_at_least("--tokens", 1), default=4096,
                   help="sampled tokens per (user, layer) when exact enumeration is too large")
    p.add_argument("--name", default=None, help="instance name")
    p.add_argument("-o", "--output", help="output file (.json or .json.gz); stdout when omitted")

    p = _add(sub, "validate", "check an instance file against the format", cmd_validate)
    p.add_argument("instance")

    p = _add(sub, "evaluate", "evaluate a placement: latency, reduction, feasibility (exit 1 if over capacity)",
             cmd_evaluate)
    p.add_argument("instance")
    p.add_argument("placement")

    p = _add(sub, "solve", "run an algorithm and write the placement", cmd_solve)
    p.add_argument("instance")
    p.add_argument("--algorithm", required=True, metavar="NAME",
                   help="one of: " + ", ".join(algorithm_names()))
    p.add_argument("--time-limit", type=_positive_float("--time-limit"), default=None, metavar="S")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--formulation", choices=["level", "assignment"], default=None,
                   help="for --algorithm exact (default level)")
    p.add_argument("--mip-gap", type=float, default=None, metavar="G", help="for --algorithm exact")
    p.add_argument("--eps", type=_positive_float("--eps"), default=None, help="for --algorithm maxconv")
    p.add_argument("--polish", action="store_true", help="finish with local search (add/drop/swap/move)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="extra algorithm parameter")
    p.add_argument("--output", "-o", help="placement file; stdout when omitted")

    p = _add(sub, "export", "write a MILP formulation for any solver", cmd_export)
    p.add_argument("instance")
    p.add_argument("--formulation", choices=["assignment", "level"], required=True)
    p.add_argument("--format", choices=["lp", "mps", "nl", "gms"], required=True)
    p.add_argument("--output", "-o", required=True)

    for register in _extra_commands():
        register(sub, _add)
    return parser


def _extra_commands() -> list[Callable]:
    """Command groups defined in their own modules (instances, analysis, MoE²)."""
    from . import cli_analysis, cli_instances, cli_moe2

    return [cli_instances.register, cli_analysis.register, cli_moe2.register]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "solve":
        from .algorithms import REGISTRY

        if args.algorithm not in REGISTRY:
            sys.stderr.write(f"slimcaching: error: unknown algorithm {args.algorithm!r}; valid: "
                             f"{', '.join(REGISTRY)}\n")
            return 2
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        sys.stderr.write(exc.one_line() + "\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
