"""Command-line group for instances: ``generate``, ``validate``, ``models``, ``from-trace``, ``suite``.

Registered by :func:`slimcaching.cli.main.build_parser`; each command parses its
options and calls one library function.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..instances.traces.importer import DEFAULT_MAX_SETS
from ..instances.traces.read import ALL_FORMATS
from ..instances.traces.stream import DEFAULT_CHUNK_ROWS
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
    from ..errors import InputError
    from ..instances.io import write_instance
    from ..instances.traces.importer import import_trace

    if args.split and not (args.output and args.test_output):
        raise InputError("--split", ("", "a split writes two instances: give -o FIT_FILE and --test-output TEST_FILE"))
    if args.test_output and not args.split:
        raise InputError("--test-output", ("", "only with --split"))
    res = import_trace(args.trace, model=args.model, fmt=args.format, user_column=args.user_column,
                       layer_base=args.layer_base, top_k=args.top_k, network=args.network, nodes=args.nodes,
                       capacity=args.capacity, device_capacity=args.device_capacity, seed=args.seed,
                       precision=args.precision, devices=args.devices, name=args.name, tokens=args.tokens,
                       min_count=args.min_count, top_mass=args.top_mass, tail=args.tail,
                       max_sets=args.max_sets or None, split=args.split, split_by=args.split_by,
                       chunk_rows=args.chunk_rows)
    for w in res.warnings:
        sys.stderr.write(f"warning: {w}\n")
    if args.split:
        write_instance(res.instances[0], args.output)
        write_instance(res.instances[1], args.test_output)
    elif args.output:
        write_instance(res.instances[0], args.output)
    else:
        emit(res.instances[0].to_dict(), None)
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

    p = add_command(sub, "from-trace", "build an instance from a router trace (vLLM, Megatron, FLAME-MoE, llama.cpp, "
                    "SGLang, JSON lines, CSV/Parquet; Fiddler, MoE-Infinity counts)", cmd_from_trace,
                    EXAMPLES["from-trace"], inputs=["trace"], outputs=["output", "test_output"])
    p.add_argument("trace", help="trace file or folder")
    p.add_argument("--model", required=True, help="catalog name, see `slimcaching models`")
    p.add_argument("--network", default="wifi-rtx", help="network preset")
    p.add_argument("--nodes", type=int_at_least("--nodes", 1, LIMITS["cells"]), default=4, help="edge servers")
    p.add_argument("--capacity", type=capacity(), default=None, help="fraction (0.25, 25%%), size units, or bytes (24GiB)")
    p.add_argument("--device-capacity", type=capacity("--device-capacity"), default=None, help="device storage, same forms as --capacity")
    p.add_argument("--devices", action=argparse.BooleanOptionalAction, default=None,
                   help="add (or drop) one device node per user")
    p.add_argument("--precision", default="bf16", help="bf16, int8, int4 or mixed")
    p.add_argument("--seed", type=seed(), default=0,
                   help="seeds the network sample, the marginal-only synthesis and --split-by user")
    p.add_argument("--format", default="auto", choices=["auto", *ALL_FORMATS],
                   help="trace layout (auto: from the extension, header, keys or columns). fiddler, counts-npy and "
                        "sglang-stat carry activation counts only: sets are synthesised")
    p.add_argument("--top-k", type=int_at_least("--top-k", 1), default=None,
                   help="model a lower Top-K than the architecture's (required for a top-1 trace of a top-K model)")
    p.add_argument("--tokens", type=int_at_least("--tokens", 1, MAX_TOKENS), default=4096,
                   help="marginal-only sources: tokens sampled per (user, layer) when sets cannot be enumerated")
    p.add_argument("--user-column", default="user",
                   help="column that identifies a user (request, task, ...); megatron: rank or step")
    p.add_argument("--layer-base", type=int_at_least("--layer-base", 0, LIMITS["cells"]), default=0,
                   help="id of the first MoE layer in the trace (1 for 1-based logs; the number of leading dense "
                        "layers for traces that number every transformer layer)")
    p.add_argument("--min-count", type=int_at_least("--min-count", 1), default=None,
                   help="keep sets seen at least this often per (user, layer); the rest becomes the --tail remainder")
    p.add_argument("--top-mass", type=number("--top-mass", 0, 1, low_open=True), default=None,
                   help="keep the most frequent sets covering this share of each (user, layer) (0 < m <= 1)")
    p.add_argument("--tail", choices=["independent", "drop"], default="independent",
                   help="remainder of a truncation: the tail's experts as singletons (marginals kept), or dropped "
                        "and the head renormalised")
    p.add_argument("--max-sets", type=int_at_least("--max-sets", 0), default=DEFAULT_MAX_SETS,
                   help="refuse to build more routing rows than this (0: no limit)")
    p.add_argument("--split", default=None, metavar="FIT:TEST",
                   help="held-out evaluation: write a fit and a test instance over the same network (e.g. 80:20)")
    p.add_argument("--split-by", choices=["time", "user"], default="time",
                   help="split each user's tokens in time order, or the users (requests) themselves")
    p.add_argument("--test-output", default=None, help="with --split: the test instance file")
    p.add_argument("--chunk-rows", type=int_at_least("--chunk-rows", 1), default=DEFAULT_CHUNK_ROWS,
                   help="rows per streamed chunk (memory vs. speed)")
    p.add_argument("--name", default=None, help="instance name")
    p.add_argument("-o", "--output", help="instance file (.json, .json.gz or .npz); stdout when omitted")

    p = add_command(sub, "suite", "benchmark suites: `suite list`, `suite generate NAME [--out DIR]`", cmd_suite,
                    EXAMPLES["suite"], folders=["out"])
    p.add_argument("action", choices=["list", "generate"])
    p.add_argument("name", nargs="?")
    p.add_argument("--out", default=None, help="output folder (default instances/NAME)")
