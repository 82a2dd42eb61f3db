"""The ``slimcaching`` command line: the parser and the entry point.

Thin by design: each command parses its options and calls one library
function.  Commands live in one module per group (:mod:`.instances`,
:mod:`.solve`, :mod:`.analysis`, and the MoE² family's own
:mod:`slimcaching.moe2.cli`).  Any :class:`~slimcaching.errors.InputError`
(malformed file, unknown algorithm, bad option value) becomes one line on
stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import InputError
from .common import Parser

__all__ = ["main", "build_parser", "version_line"]


def version_line() -> str:
    """``slimcaching X.Y.Z (python ..., numpy ..., pyomo ..., highspy ...)``: what results record as ``versions``."""
    from ..version import __version__
    from ..result import versions

    v = versions()
    backends = ", ".join(f"{k} {v[k]}" for k in ("python", "numpy", "pyomo", "highspy"))
    return f"slimcaching {__version__} ({backends})"


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: every command group registers its sub-commands."""
    from ..moe2 import cli as moe2_cli
    from . import analysis, instances, interop, solve

    parser = Parser(prog="slimcaching", description="Expert caching for distributed MoE inference.")
    parser.add_argument("--version", action="version", version=version_line(),
                        help="print the version of slimcaching and of its numerical back ends, then exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (instances, solve, analysis, interop, moe2_cli):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "solve":
        from ..algorithms import REGISTRY

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
