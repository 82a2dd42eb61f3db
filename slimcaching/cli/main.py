"""The ``slimcaching`` command line: the parser and the entry point.

Thin by design: each command parses its options and calls one library
function.  Commands live in one module per group (:mod:`.instances`,
:mod:`.solve`, :mod:`.certify`, :mod:`.analysis`, :mod:`.simulate`, and the MoE² family's own
:mod:`slimcaching.moe2.cli`).

Exit codes (``docs/model.md``, "Exit codes and option ranges"): 0 success;
1 a negative answer (infeasible placement, violated guarantee, nothing found)
or an output that cannot be written (:class:`~slimcaching.errors.OutputError`,
any operating-system error while writing); 2 malformed input, unknown
algorithm or bad option value (:class:`~slimcaching.errors.InputError`);
130 interrupted.  Every failure is one line on stderr, without a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Iterator, Sequence

from ..errors import InputError, OutputError, escape_control
from .common import Parser, check_relations

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
    from . import analysis, certify, instances, interop, simulate, solve

    parser = Parser(prog="slimcaching", description="Expert caching for distributed MoE inference.")
    parser.add_argument("--version", action="version", version=version_line(),
                        help="print the version of slimcaching and of its numerical back ends, then exit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (instances, solve, certify, analysis, simulate, interop, moe2_cli):
        group.register(sub)
    return parser


def _paths(args: argparse.Namespace, names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        v = getattr(args, name, None)
        if v is None:
            continue
        out.extend(str(x) for x in (v if isinstance(v, (list, tuple)) else [v]))
    return out


@contextlib.contextmanager
def _guarded_io(args: argparse.Namespace) -> Iterator[None]:
    """Check the command's outputs before it runs; keep its inputs from being overwritten while it runs."""
    from ..fileio import check_output, protect_inputs

    inputs = _paths(args, getattr(args, "io_inputs", ()))
    for name in getattr(args, "io_outputs", ()):
        for p in _paths(args, [name]):
            check_output(p, inputs=inputs, option="--" + name.replace("_", "-"))
    for name in getattr(args, "io_folders", ()):
        for p in _paths(args, [name]):
            check_output(p, inputs=inputs, option="--" + name.replace("_", "-"), folder=True)
    with protect_inputs(inputs):
        yield


def _drop_stdout() -> None:
    """Point stdout at the null device, so the interpreter's final flush cannot fail a second time."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(escape_control(message) + "\n")
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "solve":
        from ..algorithms import REGISTRY

        if args.algorithm not in REGISTRY:
            return _fail(f"slimcaching: error: unknown algorithm {args.algorithm!r}; valid: {', '.join(REGISTRY)}", 2)
    try:
        check_relations(args)
        with _guarded_io(args):
            rc = int(args.func(args) or 0)
        sys.stdout.flush()  # a full disk behind stdout is reported here, not lost at exit
        return rc
    except InputError as exc:
        return _fail(exc.one_line(), 2)
    except OutputError as exc:
        return _fail(exc.one_line(), 1)
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`): stop quietly
        _drop_stdout()
        return 1
    except OSError as exc:  # writing to stdout (a full disk), or an OS error outside fileio
        if exc.filename is None:
            _drop_stdout()
            return _fail(f"<stdout>: cannot write: {exc.strerror or exc}", 1)
        return _fail(f"{exc.filename}: {exc.strerror or exc}", 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
