"""What every command group of the command line shares: the parser class,
option types, ``--param`` parsing, JSON output and the way a command is added.

Every option value is checked here, in one place:

* each option's own range by its *type* (:func:`number`, :func:`integer`,
  :func:`seed`, ...), which argparse turns into one line on stderr and exit
  code 2 before anything runs;
* rules that relate several options of one command (``--top-k`` at most
  ``--experts``, array sizes within :data:`slimcaching.instances.validate.LIMITS`)
  in :func:`check_relations`, which the entry point calls before the command.

``docs/model.md`` (section "Exit codes and option ranges") lists every range.
"""
from __future__ import annotations

import argparse
import math
import sys
from typing import Any, Callable, Sequence

from ..errors import InputError, escape_control

__all__ = ["Parser", "number", "positive_float", "fraction", "integer", "int_at_least", "seed", "seed_list", "capacity",
           "parse_params", "emit", "add_command", "check_relations", "SEED_MAX"]

SEED_MAX = 2**63 - 1
"""Seeds are stored as SQLite integers (signed 64 bit)."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(escape_control(f"{self.prog}: error: {message}") + "\n")
        raise SystemExit(2)


def _ascii(s: str, kind: Callable[[str], Any]) -> Any:
    """``kind(s)`` for ASCII text only: Python's int() and float() also read '١' or '٣' as digits."""
    if not s.isascii():
        raise ValueError(s)
    return kind(s)


def _range_text(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "finite"


def number(name: str, low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[str], float]:
    """Option type: a finite number within ``[low, high]`` (an end is excluded when ``*_open``)."""
    rng = _range_text(low, high, low_open, high_open)

    def conv(s: str) -> float:
        try:
            v = _ascii(s, float)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s[:40]!r}") from None
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"{name} must be finite and {rng}, got {s!r}")
        return v
    return conv


def positive_float(name: str) -> Callable[[str], float]:
    """Option type: a finite number ``> 0``."""
    def conv(s: str) -> float:
        try:
            v = _ascii(s, float)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {s[:40]!r}") from None
        if not (math.isfinite(v) and v > 0):
            raise argparse.ArgumentTypeError(f"{name} must be > 0 and finite, got {s!r}")
        return v
    return conv


def fraction(name: str) -> Callable[[str], float]:
    """Option type: a number in ``[0, 1]``."""
    return number(name, 0.0, 1.0)


def integer(name: str, low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """Option type: an integer within ``low..high`` (either end may be open)."""
    def conv(s: str) -> int:
        try:
            v = _ascii(s, int)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {s[:40]!r}") from None
        if low is not None and v < low:
            raise argparse.ArgumentTypeError(f"{name} must be >= {low}, got {v}")
        if high is not None and v > high:
            raise argparse.ArgumentTypeError(f"{name} must be <= {high}, got {v}")
        return v
    return conv


def int_at_least(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """Option type: an integer ``>= low`` (and ``<= high`` when given)."""
    return integer(name, low, high)


def seed(name: str = "--seed") -> Callable[[str], int]:
    """Option type: a seed, an integer in ``0..2^63-1``."""
    return integer(name, 0, SEED_MAX)


def seed_list(name: str = "--seeds") -> Callable[[str], list[int | None]]:
    """Option type: comma-separated seeds; ``none`` runs once without a seed."""
    one = seed(name)

    def conv(s: str) -> list[int | None]:
        out: list[int | None] = []
        for part in s.split(","):
            part = part.strip()
            if part in ("none", "null"):
                out.append(None)
                continue
            try:
                out.append(one(part))
            except argparse.ArgumentTypeError:
                raise argparse.ArgumentTypeError(f"{name} must be comma-separated integers in 0..{SEED_MAX} "
                                                 f"(or none), got {s[:60]!r}") from None
        return out
    return conv


def capacity(name: str = "--capacity") -> Callable[[str], str]:
    """Option type: a storage size as :func:`slimcaching.instances.suites.parse_capacity` reads it,
    at most ``LIMITS["size"]`` size units (``2^63`` bytes); the text itself is passed on."""
    def conv(s: str) -> str:
        from ..instances.suites import parse_capacity
        from ..instances.validate import LIMITS

        try:
            v = parse_capacity(s)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.rule.replace("--capacity", name)) from None
        too_big = (("units" in v and v["units"] > LIMITS["size"])
                   or ("bytes" in v and not v["bytes"] <= 2**63))
        if too_big:
            raise argparse.ArgumentTypeError(f"{name} must be at most {LIMITS['size']} size units or 2^63 bytes, "
                                             f"got {s[:40]!r}")
        return s
    return conv


def parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``--param key=value`` pairs; values are parsed as JSON when they can be (finite numbers only)."""
    from ..fileio import loads_json

    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise InputError("--param", ("", f"expected key=value, got {item!r}"))
        k, v = item.split("=", 1)
        key = k.replace("-", "_")
        if not key.isidentifier():
            raise InputError("--param", ("", f"parameter name must be an identifier, got {k!r}"))
        if key in ("seed", "time_limit", "polish"):
            raise InputError("--param", ("", f"{k} is an option of its own (--{k.replace('_', '-')}), "
                                             f"not a --param"))
        try:
            value = loads_json(v, "--param")
        except InputError:
            value = v
        try:
            finite = math.isfinite(float(v))
        except (ValueError, OverflowError):
            finite = True  # not a number at all: a string parameter
        if not finite:
            raise InputError("--param", ("", f"{k} must be finite, got {v!r}"))
        out[key] = value
    return out


def emit(obj: Any, output: str | None, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``output`` (see :mod:`slimcaching.fileio`), or to stdout when it is ``None``."""
    from ..fileio import dumps_json, write_json

    if output:
        write_json(obj, output, indent=indent)
    else:
        sys.stdout.write(dumps_json(obj, indent=indent) + "\n")


def add_command(sub, name: str, help: str, func: Callable[[argparse.Namespace], int],
                example: str | None = None, *, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
                folders: Sequence[str] = ()) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` calling ``func``, with ``example`` shown by ``--help``.

    ``inputs`` name the arguments holding the command's input files,
    ``outputs`` those holding an output file and ``folders`` an output folder:
    before the command runs, the entry point checks that every output can be
    written and is not an input (:func:`slimcaching.fileio.check_output`), and
    while it runs no write may replace an input.
    """
    p = sub.add_parser(name, help=help, description=help,
                       epilog=f"example:\n  {example}" if example else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func, io_inputs=tuple(inputs), io_outputs=tuple(outputs), io_folders=tuple(folders))
    return p


# ------------------------------------------------------------------ rules relating options
def _cells(opt: str, **dims: int) -> None:
    from ..instances.validate import LIMITS

    cells = math.prod(dims.values())
    if cells > LIMITS["cells"]:
        raise InputError(opt, ("", f"{' x '.join(f'{k}={v}' for k, v in dims.items())} = {cells} cells exceeds "
                                   f"the instance size limit of {LIMITS['cells']}"))


def _generate(args: argparse.Namespace) -> None:
    from ..instances.validate import LIMITS

    if args.model:
        from ..instances.catalog import get_architecture

        arch = get_architecture(args.model)
        L = args.layers or arch.moe_layers
        E = args.experts or arch.routed_experts
    else:
        L, E, K = args.layers or 4, args.experts or 8, args.top_k or 2
        if K > E:
            raise InputError("--top-k", ("", f"must be at most --experts ({E}), got {K}"))
        if L * E * args.expert_size > LIMITS["model_size"]:
            raise InputError("--expert-size", ("", f"layers x experts x expert size exceeds {LIMITS['model_size']}"))
    devices = args.users if getattr(args, "devices", None) else 0
    _cells("--users", users=args.users, layers=L, experts=E)
    _cells("--nodes", nodes=args.nodes + devices, layers=L, experts=E)
    _cells("--nodes", users=args.users, nodes=args.nodes + devices, layers=L)
    if args.topics > E:
        raise InputError("--topics", ("", f"must be at most the number of experts ({E}), got {args.topics}"))


def _worst_case(args: argparse.Namespace) -> None:
    if args.top_k > args.max_experts:
        raise InputError("--top-k", ("", f"must be at most --max-experts ({args.max_experts}), got {args.top_k}"))


def _moe2_generate(args: argparse.Namespace) -> None:
    from ..instances.validate import LIMITS

    if args.categories * 2**args.experts > LIMITS["cells"]:
        raise InputError("--categories", ("", f"categories x 2^experts = {args.categories * 2**args.experts} quality "
                                              f"entries exceeds the limit of {LIMITS['cells']}"))


_RELATIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "generate": _generate,
    "worst-case": _worst_case,
    "moe2 generate": _moe2_generate,
}


def check_relations(args: argparse.Namespace) -> None:
    """Check the rules relating several options of the command in ``args``.

    Raises
    ------
    InputError
        Naming the option and the rule (exit code 2).
    """
    name = args.command + (f" {args.moe2_command}" if getattr(args, "moe2_command", None) else "")
    rule = _RELATIONS.get(name)
    if rule is not None:
        rule(args)
