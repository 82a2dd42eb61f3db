"""What every command group of the command line shares: the parser class,
option types, ``--param`` parsing, JSON output and the way a command is added.

Option types raise :class:`argparse.ArgumentTypeError`, which the parser turns
into one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from ..errors import InputError

__all__ = ["Parser", "positive_float", "int_at_least", "parse_params", "emit", "add_command"]


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def positive_float(name: str) -> Callable[[str], float]:
    """Option type: a number ``> 0``."""
    def conv(s: str) -> float:
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {s!r}")
        return v
    return conv


def int_at_least(name: str, low: int) -> Callable[[str], int]:
    """Option type: an integer ``>= low``."""
    def conv(s: str) -> int:
        try:
            v = int(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s!r}") from None
        if v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        return v
    return conv


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
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


def emit(obj: Any, output: str | None, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``output`` (atomically), or to stdout when it is ``None``."""
    if output:
        from ..fileio import write_json

        write_json(obj, output)
    else:
        json.dump(obj, sys.stdout, indent=indent)
        sys.stdout.write("\n")


def add_command(sub, name: str, help: str, func: Callable[[argparse.Namespace], int],
                example: str | None = None) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` calling ``func``, with ``example`` shown by ``--help``."""
    p = sub.add_parser(name, help=help, description=help,
                       epilog=f"example:\n  {example}" if example else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p
