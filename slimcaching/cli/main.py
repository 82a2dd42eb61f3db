"""The ``slimcaching`` command line: the parser and the entry point.

Thin by design: each command parses its options and calls one library
function.  Commands live in one module per group (:mod:`.instances`,
:mod:`.solve`, :mod:`.certify`, :mod:`.analysis`, :mod:`.simulate`, and the MoE² family's own
:mod:`slimcaching.moe2.cli`).

Exit codes (``docs/model.md``, "Exit codes and option ranges"): 0 success;
1 a negative answer (infeasible placement, violated guarantee, nothing found)
or an output that cannot be written (:class:`~slimcaching.errors.OutputError`,
any operating-system error while writing, a results store that cannot be
written); 2 malformed input, unknown algorithm or bad option value
(:class:`~slimcaching.errors.InputError`); 130 / 143 interrupted by SIGINT /
SIGTERM.  Every failure is one line on stderr, without a traceback.

SIGINT and SIGTERM stop every command the same way: the signal becomes an
exception in the main thread (:class:`Terminated` for SIGTERM, a
``KeyboardInterrupt``), so every ``finally`` runs (worker processes are ended,
the results store is closed with every finished row committed), and the
command prints one line and exits with 130 (SIGINT) or 143 (SIGTERM).  A
second signal while that cleanup runs exits at once with the same code.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import Any, Iterator, Sequence

from ..errors import InputError, OutputError, Terminated, escape_control
from .common import Parser, check_relations


def version_text() -> str:
    """``slimcaching X.Y.Z (Python ..., numpy ..., pyomo ..., highspy ...)``: what a results section cites."""
    from ..result import versions
    from ..version import __version__

    v = versions()
    deps = ", ".join(f"{k} {v[k]}" for k in ("numpy", "pyomo", "highspy"))
    return f"slimcaching {__version__} (Python {v['python']}, {deps})"


__all__ = ["main", "build_parser", "version_text", "Terminated"]


_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: The first SIGINT / SIGTERM of this run: it decides the exit code, also when a solve turned it into
#: :class:`~slimcaching.solvers.SolveInterrupted` with its incumbent.
_RECEIVED: list[int] = []


def _install_signal_handlers() -> dict[int, Any]:
    """SIGINT / SIGTERM -> an exception, then a hard exit on the second; returns what to restore.

    A signal ignored by the parent process (``nohup``, a shell's background
    job) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    state = {"first": None}

    def handler(signum, frame):
        if state["first"] is not None:  # the cleanup of the first one hangs: leave now
            os.write(2, b"slimcaching: interrupted again; exiting now\n")
            os._exit(_EXIT.get(state["first"], 130))
        state["first"] = signum
        _RECEIVED.append(signum)
        raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()

    restore = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)
        if prev is signal.SIG_IGN:
            continue
        signal.signal(sig, handler)
        restore[sig] = prev
    return restore


def _exit_now(code: int) -> None:
    """Flush and leave without tearing the interpreter down.

    Every ``finally`` has run by now (workers ended, the store closed); what is
    left is freeing modules, 0.25-0.4 CPU-s with Pyomo and pandas loaded, which
    on a loaded machine is seconds of the 2 s a signal is promised.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _one_line(exc: BaseException, head: str) -> str:
    notes = "; ".join(getattr(exc, "__notes__", ()))
    return (head + (f"; {notes}" if notes else "")).replace("\n", " ")


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: every command group registers its sub-commands."""
    from ..moe2 import cli as moe2_cli
    from . import analysis, certify, instances, interop, simulate, solve

    parser = Parser(prog="slimcaching", description="Expert caching for distributed MoE inference.")
    parser.add_argument("--version", action="version", version=version_text(),
                        help="print the versions of slimcaching and its numerical back ends, and exit")
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
    _RECEIVED.clear()
    restore = _install_signal_handlers()
    command = "slimcaching"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"slimcaching {args.command}"
        if args.command == "solve":
            from ..algorithms import REGISTRY

            if args.algorithm not in REGISTRY:
                return _fail(f"slimcaching: error: unknown algorithm {args.algorithm!r}; valid: "
                             f"{', '.join(REGISTRY)}", 2)
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
    except KeyboardInterrupt as exc:
        term = (isinstance(exc, Terminated) or getattr(exc, "signum", None) == signal.SIGTERM
                or _RECEIVED[:1] == [signal.SIGTERM])
        sig = "SIGTERM" if term else "SIGINT"
        code = _fail(_one_line(exc, f"{command}: interrupted ({sig})"), 143 if term else 130)
        if argv is None:  # the program itself: the cleanup has run, skip the interpreter's teardown
            _exit_now(code)
        return code
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:  # writing to stdout (a full disk)
            _drop_stdout()
            return _fail(f"<stdout>: cannot write: {exc.strerror or exc}", 1)
        if exc.filename is None:  # raised with its message: a results store that cannot be written, ...
            return _fail(_one_line(exc, f"{command}: error: {exc}"), 1)
        return _fail(f"{exc.filename}: {exc.strerror or exc}", 1)
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
