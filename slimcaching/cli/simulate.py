"""Command-line group for replay and held-out evaluation: ``simulate``, ``heldout``."""
from __future__ import annotations

import argparse
import json

from .common import add_command, emit, int_at_least, number, positive_float, seed

__all__ = ["register"]

EXAMPLES = {
    "simulate": "slimcaching simulate inst.json placement.json --tokens 200 --seed 1 --policies lru,lfu,popularity",
    "heldout": "slimcaching heldout fit.json test.json --algorithms greedy,best --seed 0",
}


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..analysis.simulate import sample_stream, simulate, trace_stream
    from ..instances.io import read_instance, read_placement

    inst = read_instance(args.instance)
    placement, _ = read_placement(args.placement, inst)
    if args.trace:
        stream = trace_stream(inst, args.trace, fmt=args.format, user_column=args.user_column,
                              layer_base=args.layer_base, max_tokens=args.max_tokens)
    else:
        stream = sample_stream(inst, args.tokens, args.seed)
    out = simulate(inst, placement, stream=stream, policies=[p for p in args.policies.split(",") if p],
                   miss_penalty=args.miss_penalty)
    out["run"].update({"seed": args.seed, "placement_file": args.placement})
    emit(out, args.output, indent=None if not args.output else 1)
    return 0


def cmd_heldout(args: argparse.Namespace) -> int:
    from ..analysis.heldout import generalisation_gap, heldout_table
    from ..instances.io import read_instance

    fit, test = read_instance(args.fit), read_instance(args.test)
    rows = generalisation_gap(fit, test, [a for a in args.algorithms.split(",") if a], seed=args.seed,
                              time_limit=args.time_limit)
    if args.json:
        print(json.dumps({"fit": fit.name, "test": test.name, "fit_hash": fit.content_hash(),
                          "test_hash": test.content_hash(), "seed": args.seed, "rows": rows}, indent=1))
    else:
        print(heldout_table(rows))
    return 0


def register(sub) -> None:
    """Add ``simulate`` and ``heldout`` to the ``slimcaching`` parser."""
    from ..instances.traces.read import ALL_FORMATS

    p = add_command(sub, "simulate", "replay tokens through a placement and through online LRU/LFU/popularity "
                    "caches of the same capacity; per-token latency percentiles and requests per node",
                    cmd_simulate, EXAMPLES["simulate"], inputs=["instance", "placement", "trace"], outputs=["output"])
    p.add_argument("instance")
    p.add_argument("placement")
    p.add_argument("--trace", default=None, help="replay this trace's tokens (same model and users as the instance)")
    p.add_argument("--format", default="auto", choices=["auto", *ALL_FORMATS], help="with --trace: its layout")
    p.add_argument("--user-column", default="user", help="with --trace: its user column")
    p.add_argument("--layer-base", type=int_at_least("--layer-base", 0), default=0, help="with --trace")
    p.add_argument("--max-tokens", type=int_at_least("--max-tokens", 1), default=None,
                   help="with --trace: replay only the first N tokens (time order)")
    p.add_argument("--tokens", type=int_at_least("--tokens", 1), default=200,
                   help="without --trace: tokens sampled per user from the instance's distributions")
    p.add_argument("--seed", type=seed(), default=0, help="seeds the sampled tokens")
    p.add_argument("--policies", default="lru,lfu,popularity", help="comma-separated: lru, lfu, popularity")
    p.add_argument("--miss-penalty", type=number("--miss-penalty", 0), default=0.0,
                   help="seconds added to the cloud latency of an online-cache miss (the expert's transfer)")
    p.add_argument("-o", "--output", default=None, help="JSON file; stdout when omitted")

    p = add_command(sub, "heldout", "generalisation gap: run algorithms on a fit instance, evaluate on the test "
                    "instance of the same split", cmd_heldout, EXAMPLES["heldout"], inputs=["fit", "test"])
    p.add_argument("fit")
    p.add_argument("test")
    p.add_argument("--algorithms", default="popularity,greedy,best")
    p.add_argument("--seed", type=seed(), default=0, help="seed of every algorithm run")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, metavar="S",
                   help="seconds per algorithm run")
    p.add_argument("--json", action="store_true", help="JSON rows instead of a markdown table")
