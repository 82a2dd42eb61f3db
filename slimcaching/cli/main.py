"""The ``slimcaching`` command line: the parser and the entry point.

Thin by design: each command parses its options and calls one library
function.  Commands live in one module per group (:mod:`.instances`,
:mod:`.solve`, :mod:`.analysis`, and the MoE² family's own
:mod:`slimcaching.moe2.cli`).  Any :class:`~slimcaching.errors.InputError`
(malformed file, unknown algorithm, bad option value) becomes one line on
stderr and exit code 2; an ``OSError`` (a store that cannot be written, a full
disk) one line and exit code 1.

SIGINT and SIGTERM stop every command the same way: the signal becomes an
exception in the main thread (:class:`Terminated` for SIGTERM, a
``KeyboardInterrupt``), so every ``finally`` runs (worker processes are ended,
the results store is closed with every finished row committed), and the
command prints one line and exits with 130 (SIGINT) or 143 (SIGTERM).  A
second signal while that cleanup runs exits at once with the same code.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any, Sequence

from ..errors import InputError
from .common import Parser

__all__ = ["main", "build_parser", "Terminated"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same cleanup runs."""


_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


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
    return (head + (f"; {notes}" if notes else "")).replace("\n", " ") + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The whole parser: every command group registers its sub-commands."""
    from ..moe2 import cli as moe2_cli
    from . import analysis, instances, solve

    parser = Parser(prog="slimcaching", description="Expert caching for distributed MoE inference.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in (instances, solve, analysis, moe2_cli):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    restore = _install_signal_handlers()
    command = "slimcaching"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"slimcaching {args.command}"
        if args.command == "solve":
            from ..algorithms import REGISTRY

            if args.algorithm not in REGISTRY:
                sys.stderr.write(f"slimcaching: error: unknown algorithm {args.algorithm!r}; valid: "
                                 f"{', '.join(REGISTRY)}\n")
                return 2
        return int(args.func(args) or 0)
    except InputError as exc:
        sys.stderr.write(exc.one_line() + "\n")
        return 2
    except KeyboardInterrupt as exc:
        sig = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        sys.stderr.write(_one_line(exc, f"{command}: interrupted ({sig})"))
        code = 143 if isinstance(exc, Terminated) else 130
        if argv is None:  # the program itself: the cleanup has run, skip the interpreter's teardown
            _exit_now(code)
        return code
    except OSError as exc:
        sys.stderr.write(_one_line(exc, f"{command}: error: {exc}"))
        return 1
    finally:
        for sig, handler in restore.items():
            signal.signal(sig, handler)
