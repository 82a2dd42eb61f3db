"""Command-line group for benchmark instances: ``models``, ``from-trace``, ``suite``.

Registered by :func:`slimcaching.cli.build_parser`; each command parses its
options and calls one library function.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable

__all__ = ["register"]


def cmd_models(args: argparse.Namespace) -> int:
    from .instances.catalog import catalog_table, load_catalog

    if args.json:
        print(json.dumps([a.row() for a in load_catalog()], indent=1))
    else:
        print(catalog_table())
    return 0


def cmd_from_trace(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .instances.catalog import get_architecture
    from .instances.io import write_instance
    from .instances.traces import (MARGINAL_FORMATS, instance_from_marginals, instance_from_trace,
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
    if args.output:
        write_instance(inst, args.output)
    else:
        json.dump(inst.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0


def cmd_suite(args: argparse.Namespace) -> int:
    from .instances.suites import SUITES, generate_suite, suite_specs

    if args.action == "list":
        for name, (desc, _) in SUITES.items():
            print(f"{name:16s} {len(suite_specs(name)):3d} instances  {desc}")
        return 0
    if not args.name:
        from .errors import InputError

        raise InputError("suite", ("", "suite generate needs a NAME; valid: " + ", ".join(SUITES)))
    out = args.out or f"instances/{args.name}"
    paths = generate_suite(args.name, out)
    print(f"wrote {len(paths)} files to {out}")
    return 0


def register(sub, add: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the instance commands to the ``slimcaching`` parser."""
    p = add(sub, "models", "list the MoE architectures of the catalog (public config.json facts)", cmd_models)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = add(sub, "from-trace", "build an instance from a router trace (CSV, Parquet, npy, JSON lines)",
            cmd_from_trace)
    p.add_argument("trace")
    p.add_argument("--model", required=True, help="catalog name, see `slimcaching models`")
    p.add_argument("--network", default="wifi-rtx", help="network preset")
    p.add_argument("--nodes", type=int, default=4, help="edge servers")
    p.add_argument("--capacity", default=None, help="fraction (0.25, 25%%), size units, or bytes (24GiB)")
    p.add_argument("--device-capacity", default=None, help="device storage, same forms as --capacity")
    p.add_argument("--devices", action=argparse.BooleanOptionalAction, default=None,
                   help="add (or drop) one device node per user")
    p.add_argument("--precision", default="bf16", help="bf16, int8, int4 or mixed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", default="auto",
                   choices=["auto", "long", "list", "npy", "jsonl", "fiddler", "counts-npy"],
                   help="trace layout (auto: from the extension and columns; .json = Fiddler popularity). "
                        "fiddler and counts-npy carry activation counts only: sets are synthesised")
    p.add_argument("--tokens", type=int, default=4096,
                   help="marginal-only sources: tokens sampled per (user, layer) when sets cannot be enumerated")
    p.add_argument("--user-column", default="user", help="column that identifies a user (request, task, ...)")
    p.add_argument("--layer-base", type=int, default=0, help="id of the first MoE layer in the trace (0 or 1)")
    p.add_argument("--name", default=None, help="instance name")
    p.add_argument("-o", "--output", help="instance file (.json or .json.gz); stdout when omitted")

    p = add(sub, "suite", "benchmark suites: `suite list`, `suite generate NAME [--out DIR]`", cmd_suite)
    p.add_argument("action", choices=["list", "generate"])
    p.add_argument("name", nargs="?")
    p.add_argument("--out", default=None, help="output folder (default instances/NAME)")
