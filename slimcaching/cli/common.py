"""What every command group of the command line shares: the parser class,
the help layout, option types, ``--param`` parsing, JSON output, progress bars
and the way a command is added.

Option types raise :class:`argparse.ArgumentTypeError`, which the parser turns
into one line on stderr and exit code 2.  Every ``--help`` shows each
option's default (:class:`HelpFormatter`).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from ..errors import InputError

__all__ = ["Parser", "HelpFormatter", "positive_float", "int_at_least", "parse_params", "json_text", "emit",
           "show_progress", "add_command"]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help that keeps the example's line breaks and states every option's default.

    Like :class:`argparse.ArgumentDefaultsHelpFormatter`, ``(default: X)`` is
    appended to an option's help; it is left out when the help already says
    what the default is (for defaults that are not a value, such as "no
    limit"), for flags (default off) and for required options.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("(default" in text or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or action.required or not action.option_strings
                or action.nargs == 0):
            return text
        return text + " (default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2 and shows defaults in ``--help``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

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


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list, tuple))


def _flat(v: Any) -> bool:
    """A scalar, a list of scalars, or a list of lists of scalars (a cache ``[[l, e], ...]``)."""
    if isinstance(v, (list, tuple)):
        return all(_scalar(x) or (isinstance(x, (list, tuple)) and all(map(_scalar, x))) for x in v)
    return _scalar(v)


#: Longest object written on one line by :func:`json_text`.
ONE_LINE = 100


def json_text(obj: Any, indent: int = 1, _level: int = 0) -> str:
    """JSON with nested objects indented and short values on one line.

    An array of scalars or of arrays of scalars (a node's cache
    ``[[0, 1], [0, 3]]``) stays on one line, and so does an object of such
    values when it fits in :data:`ONE_LINE` characters (a routing entry
    ``{"experts": [0, 3], "p": 0.4}``): a placement file holds one line per
    node instead of four lines per ``[l, e]`` pair.
    ``json.loads(json_text(x)) == x`` for every JSON value ``x``.
    """
    one = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    pad, inner = " " * (indent * _level), " " * (indent * (_level + 1))
    if isinstance(obj, dict) and obj:
        if all(_flat(v) for v in obj.values()) and len(one) <= ONE_LINE and _level > 0:
            return one
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {json_text(v, indent, _level + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)) and obj and not _flat(obj):
        return "[\n" + ",\n".join(inner + json_text(v, indent, _level + 1) for v in obj) + "\n" + pad + "]"
    return one


def emit(obj: Any, output: str | None, *, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``output`` (atomically, through :mod:`slimcaching.fileio`) or to
    stdout when it is ``None``: in the :func:`json_text` layout, or on one line with ``indent=None``."""
    text = (json_text(obj, indent) if indent is not None
            else json.dumps(obj, ensure_ascii=False, allow_nan=False)) + "\n"
    if output:
        from ..fileio import write_text

        write_text(text, output)
    else:
        sys.stdout.write(text)


def show_progress(args: argparse.Namespace) -> bool:
    """Whether a command shows a progress bar: not with ``--no-progress``, and only when
    stderr is a terminal (a log file would collect every ``\\r`` update)."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def add_command(sub, name: str, help: str, func: Callable[[argparse.Namespace], int],
                example: str | None = None) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` calling ``func``, with ``example`` shown by ``--help``."""
    p = sub.add_parser(name, help=help, description=help,
                       epilog=f"example:\n  {example}" if example else None,
                       formatter_class=HelpFormatter)
    p.set_defaults(func=func)
    return p
