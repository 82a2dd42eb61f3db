"""Command-line group for instances: ``generate``, ``validate``, ``models``, ``from-trace``, ``suite``.

Registered by :func:`slimcaching.cli.main.build_parser`; each command parses its
options and calls one library function.
"""
from __future__ import annotations

import argparse
import json
from ..instances.validate import LIMITS
from .common import add_command, capacity, emit, fraction, int_at_least, number, positive_float, seed

__all__ = ["register"]

MAX_TOKENS = 2**24
"""Sampled tokens per (user, layer): the generator holds ``tokens x top_k`` ids at once."""

EXAMPLES = {
    "generate": "slimcaching generate --model mixtral-8x7b --network wifi-rtx --nodes 4 --users 4 --seed 1 -o inst.json",
    "validate": "slimcaching validate inst.json",
    "models": "slimcaching models --json",
    "from-trace": ("slimcaching from-trace instances/traces/sample-trace.csv --model mixtral-8x7b "
                   "--network wifi-rtx --seed 0 -o from-trace.json"),
    "suite": "slimcaching suite generate tiny --out /tmp/tiny",
}


def cmd_generate(args: argparse.Namespace) -> int:
    if args.model:
        from ..instances.suites import model_instance

        inst = model_instance(args.model, network=args.network, nodes=args.nodes, users=args.users,
                              capacity=args.capacity, device_capacity=args.device_capacity, seed=args.seed,
                              precision=args.precision,
                              layers=args.layers, experts=args.experts, top_k=args.top_k,
                              devices=args.devices, skew=args.skew, specialisation=args.specialisation,
                              tasks=args.tasks, topics=args.topics, topic_strength=args.topic_strength,
                              tokens=args.tokens, name=args.name)
    else:
        from ..instances.generators import random_instance

        inst = random_instance(layers=args.layers or 4, experts=args.experts or 8, top_k=args.top_k or 2,
                               nodes=args.nodes, users=args.users, seed=args.seed,
                               capacity_fraction=args.capacity_fraction, expert_size=args.expert_size,
                               skew=args.skew, tokens=args.tokens, name=args.name)
    emit(inst.to_dict(), args.output)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..instances.io import read_instance

    inst = read_instance(args.instance)
    print(json.dumps({"valid": True, "name": inst.name, "layers": inst.L, "nodes": inst.N,
                      "users": inst.U, "sets": inst.n_sets, "hash": inst.content_hash()}))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from ..instances.catalog import catalog_table, load_catalog

    if args.json:
        print(json.dumps([a.row() for a in load_catalog()], indent=1))
    else:
        print(catalog_table())
    return 0


def cmd_from_trace(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..instances.catalog import get_architecture
    from ..instances.traces import (MARGINAL_FORMATS, instance_from_marginals, instance_from_trace,
                                   read_marginals, read_trace)

    common = dict(model=args.model, network=args.network, nodes=args.nodes, capacity=args.capacity,
                  device_capacity=args.device_capacity, seed=args.seed, precision=args.precision,
                  devices=args.devices, name=args.name)
    fmt = args.format
    p = Path(args.trace)
    if fmt == "auto" and (p.suffix.lower() == ".json" or (p.is_dir() and any(p.glob("*.json")))):
        fmt = "fiddler"
    if fmt in MARGINAL_FORMATS:
        arch = get_architecture(args.model)
        marg = read_marginals(args.trace, fmt=fmt, top_k=arch.top_k)
        inst = instance_from_marginals(marg, tokens=args.tokens, **common)
    else:
        trace = read_trace(args.trace, fmt=fmt, user_column=args.user_column, layer_base=args.layer_base)
        inst = instance_from_trace(trace, **common)
    emit(inst.to_dict(), args.output)
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from ..instances.suites import SUITES, generate_suite, suite_specs

    if args.action == "list":
        for name, (desc, _) in SUITES.items():
            print(f"{name:16s} {len(suite_specs(name)):3d} instances  {desc}")
        return 0
    if not args.name:
        from ..errors import InputError

        raise InputError("suite", ("", "suite generate needs a NAME; valid: " + ", ".join(SUITES)))
    out = args.out or f"instances/{args.name}"
    paths = generate_suite(args.name, out)
    print(f"wrote {len(paths)} files to {out}")
    return 0


def register(sub) -> None:
    """Add the instance commands to the ``slimcaching`` parser."""
    p = add_command(sub, "generate", "generate a seeded instance: synthetic, or a real architecture (--model) "
                    "on an edge-network preset (--network)", cmd_generate, EXAMPLES["generate"], outputs=["output"])
    p.add_argument("--model", default=None, metavar="NAME",
                   help="catalog architecture, case-insensitive (see `slimcaching models`)")
    p.add_argument("--network", default="wifi-rtx", metavar="PRESET",
                   help="with --model: wifi-rtx, 5g-mec, wifi-jetson or 5g-device")
    p.add_argument("--layers", type=int_at_least("--layers", 1, LIMITS["cells"]), default=None,
                   help="MoE layers (default 4; with --model: keep only the first LAYERS)")
    p.add_argument("--experts", type=int_at_least("--experts", 1, LIMITS["experts"]), default=None,
                   help="experts per layer (default 8; with --model: keep only the first EXPERTS)")
    p.add_argument("--top-k", type=int_at_least("--top-k", 1, LIMITS["experts"]), default=None,
                   help="Top-K (default 2; with --model: the model's, or lower)")
    p.add_argument("--nodes", type=int_at_least("--nodes", 1, LIMITS["cells"]), default=3, help="edge servers")
    p.add_argument("--users", type=int_at_least("--users", 1, LIMITS["cells"]), default=3)
    p.add_argument("--seed", type=seed(), default=0)
    p.add_argument("--capacity", type=capacity(), default=None,
                   help="with --model: per-server storage as a fraction (0.25, 25%%), size units (1008) "
                        "or bytes (24GiB); default: the preset's storage")
    p.add_argument("--device-capacity", type=capacity("--device-capacity"), default=None,
                   help="with --model and devices: device storage, same forms as --capacity")
    p.add_argument("--precision", default="bf16", help="with --model: bf16, int8, int4 or mixed (per layer)")
    p.add_argument("--devices", action=argparse.BooleanOptionalAction, default=None,
                   help="with --model: add (or drop) one device node per user")
    p.add_argument("--capacity-fraction", type=positive_float("--capacity-fraction"), default=0.25,
                   help="without --model: each node stores this fraction of the model")
    p.add_argument("--expert-size", type=int_at_least("--expert-size", 1, LIMITS["size"]), default=1,
                   help="without --model: expert size in units")
    p.add_argument("--skew", type=number("--skew", 0, 10), default=1.0,
                   help="Zipf exponent of expert popularity (0..10)")
    p.add_argument("--specialisation", type=fraction("--specialisation"), default=0.5,
                   help="with --model: weight of the per-task popularity profile (0..1)")
    p.add_argument("--tasks", type=int_at_least("--tasks", 1, LIMITS["experts"]), default=2,
                   help="with --model: task groups")
    p.add_argument("--topics", type=int_at_least("--topics", 0, LIMITS["experts"]), default=0,
                   help="with --model: latent topics per layer (co-activation beyond Plackett-Luce)")
    p.add_argument("--topic-strength", type=number("--topic-strength", 0, 20), default=2.0,
                   help="with --model: log-boost of a topic's experts (0..20)")
    p.add_argument("--tokens", type=int_at_least("--tokens", 1, MAX_TOKENS), default=4096,
                   help="sampled tokens per (user, layer) when exact enumeration is too large")
    p.add_argument("--name", default=None, help="instance name")
    p.add_argument("-o", "--output", help="output file (.json or .json.gz); stdout when omitted")

    p = add_command(sub, "validate", "check an instance file against the format", cmd_validate, EXAMPLES["validate"],
                    inputs=["instance"])
    p.add_argument("instance")

    p = add_command(sub, "models", "list the MoE architectures of the catalog (public config.json facts)",
                    cmd_models, EXAMPLES["models"])
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add_command(sub, "from-trace", "build an instance from a router trace (CSV, Parquet, npy, JSON lines)",
                    cmd_from_trace, EXAMPLES["from-trace"], inputs=["trace"], outputs=["output"])
    p.add_argument("trace")
    p.add_argument("--model", required=True, help="catalog name, see `slimcaching models`")
    p.add_argument("--network", default="wifi-rtx", help="network preset")
    p.add_argument("--nodes", type=int_at_least("--nodes", 1, LIMITS["cells"]), default=4, help="edge servers")
    p.add_argument("--capacity", type=capacity(), default=None,
                   help="fraction (0.25, 25%%), size units, or bytes (24GiB)")
    p.add_argument("--device-capacity", type=capacity("--device-capacity"), default=None,
                   help="device storage, same forms as --capacity")
    p.add_argument("--devices", action=argparse.BooleanOptionalAction, default=None,
                   help="add (or drop) one device node per user")
    p.add_argument("--precision", default="bf16", help="bf16, int8, int4 or mixed")
    p.add_argument("--seed", type=seed(), default=0)
    p.add_argument("--format", default="auto",
                   choices=["auto", "long", "list", "npy", "jsonl", "fiddler", "counts-npy"],
                   help="trace layout (auto: from the extension and columns; .json = Fiddler popularity). "
                        "fiddler and counts-npy carry activation counts only: sets are synthesised")
    p.add_argument("--tokens", type=int_at_least("--tokens", 1, MAX_TOKENS), default=4096,
                   help="marginal-only sources: tokens sampled per (user, layer) when sets cannot be enumerated")
    p.add_argument("--user-column", default="user", help="column that identifies a user (request, task, ...)")
    p.add_argument("--layer-base", type=int_at_least("--layer-base", 0, LIMITS["cells"]), default=0,
                   help="id of the first MoE layer in the trace (0 or 1)")
    p.add_argument("--name", default=None, help="instance name")
    p.add_argument("-o", "--output", help="instance file (.json or .json.gz); stdout when omitted")

    p = add_command(sub, "suite", "benchmark suites: `suite list`, `suite generate NAME [--out DIR]`", cmd_suite,
                    EXAMPLES["suite"], folders=["out"])
    p.add_argument("action", choices=["list", "generate"])
    p.add_argument("name", nargs="?")
    p.add_argument("--out", default=None, help="output folder (default instances/NAME)")
