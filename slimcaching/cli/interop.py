"""Command-line group for working with other tools: ``import-solution``, ``schema``.

Registered by :func:`slimcaching.cli.main.build_parser`; each command parses
its options and calls one library function.
"""
from __future__ import annotations

import argparse
import sys

from .common import add_command, emit

__all__ = ["register"]

EXAMPLES = {
    "import-solution": "slimcaching export inst.json --formulation level --format mps --output model.mps\n"
                       "  highs model.mps --solution_file model.sol\n"
                       "  slimcaching import-solution inst.json model.sol --formulation level --output placement.json",
    "schema": "slimcaching schema slimcaching-instance/1 > instance.schema.json",
}


def cmd_import_solution(args: argparse.Namespace) -> int:
    from ..formulations.import_solution import import_solution
    from ..instances.io import read_instance

    inst = read_instance(args.instance)
    imported = import_solution(inst, args.solution, formulation=args.formulation, fmt=args.format,
                               col=args.col, row=args.row)
    emit(imported.to_placement_dict(inst), args.output)
    if not imported.result.feasible:
        sys.stderr.write(f"{args.solution}: {imported.result.message}\n")
        return 1
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..schemas import schema_names, schema_text

    if args.name is None:
        raise InputError("schema", ("", f"name a schema: {', '.join(schema_names())}"))
    print(schema_text(args.name))
    return 0


def register(sub) -> None:
    """Add the interoperability commands to the ``slimcaching`` parser."""
    from ..formulations.solution_files import SOLUTION_FORMATS
    from ..schemas import schema_names

    p = add_command(sub, "import-solution",
                    "read a solution another solver wrote for an exported model, check it with the evaluator "
                    "and write the placement (exit 1 if over capacity)",
                    cmd_import_solution, EXAMPLES["import-solution"])
    p.add_argument("instance", help="the instance the model was exported from")
    p.add_argument("solution", help="the solver's solution file")
    p.add_argument("--formulation", choices=["level", "assignment"], required=True,
                   help="the formulation that was exported")
    p.add_argument("--format", choices=["auto", *SOLUTION_FORMATS], default="auto",
                   help="layout of the solution file (default: detected from its first lines)")
    p.add_argument("--col", default=None, metavar="FILE",
                   help="for --format nl: the .col file written next to the .nl (default: SOLUTION with .col)")
    p.add_argument("--row", default=None, metavar="FILE",
                   help="for --format nl: the .row file, to check the constraint count (default: SOLUTION with .row)")
    p.add_argument("--output", "-o", help="placement file (default: stdout)")

    p = add_command(sub, "schema", "print the JSON Schema (draft 2020-12) of a file format or command output",
                    cmd_schema, EXAMPLES["schema"])
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="one of: " + ", ".join(schema_names()))
