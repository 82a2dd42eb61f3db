"""``make bench``: run every performance benchmark and collect their markdown.

Each ``benchmarks/perf_<area>.py`` script has a ``main()`` that
prints a markdown table of medians and the machine.  This entry point runs
them (all, or those chosen with ``--only``), echoes their output and writes
it to one markdown file.  A failing benchmark is reported and the others
still run; the exit code is 1 if any failed.

Usage::

    python -m benchmarks.run [--only foundation,algorithms] [--list] [--output FILE]   # from the repository root
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import pkgutil
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

__all__ = ["available", "run_benchmarks", "main", "STANDARD_ARGS"]

#: Arguments of the standard run (``make bench``, about 20 minutes on 2 cores);
#: ``--full`` runs every module with its own defaults (hours for formulations).
STANDARD_ARGS: dict[str, list[str]] = {
    "formulations": ["--sizes", "tiny", "small", "medium", "--time-limit", "120", "--repeat", "1"],
    "moe2": ["--sizes", "4,6,8,10,12,14,16", "--seeds", "2"],
    "moe2_oracle": ["--seeds", "2", "--time-limit", "30"],
    "certify": ["--files", "instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json",
                "instances/paper/paper-mixtral-8x7b-wifi-jetson-int4.json",
                "instances/mixed-precision/mixed-mixtral-8x7b-wifi-rtx-L8.json", "--time-limit", "120"],
    # the 8 x 8 mixed-precision file (the 32 x 8 5g-mec file: about 25 minutes)
    "enumeration": ["--files", "instances/mixed-precision/mixed-mixtral-8x7b-wifi-rtx-L8.json", "--time-limit", "600"],
    "roundtrip": ["--instances", "paper-mixtral-8x7b-wifi-rtx-bf16.json", "--repeat", "3"],
    # the two paper files where this bound is the strongest start (all seven large ones: a few minutes)
    "bounds": ["--files", "instances/paper/paper-olmoe-1b-7b-wifi-rtx-bf16.json.gz",
               "instances/paper/paper-qwen1.5-moe-a2.7b-5g-device-bf16.json.gz"],
    # the three smallest paper instances (the full suite: hours, DeepSeek-V3 alone about an hour)
    "paper_table": ["--files", "instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json",
                    "instances/paper/paper-switch-base-8-wifi-jetson-bf16.json",
                    "instances/paper/paper-switch-base-8-5g-device-bf16.json", "--hard-timeout", "600"],
}


def available() -> list[str]:
    """Areas with a ``perf_<area>`` module, sorted."""
    here = [str(Path(__file__).resolve().parent)]
    return sorted(m.name[len("perf_"):] for m in pkgutil.iter_modules(here) if m.name.startswith("perf_"))


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


def run_benchmarks(areas: Sequence[str] | None = None, *, echo: bool = True,
                   full: bool = False) -> tuple[str, list[str]]:
    """Run the chosen benchmarks; return the combined markdown and the failed areas.

    Each module runs with :data:`STANDARD_ARGS` unless ``full`` is true.
    """
    from slimcaching.errors import InputError

    avail = available()
    areas = list(areas) if areas else avail
    unknown = [a for a in areas if a not in avail]
    if unknown:
        raise InputError("--only", ("", f"unknown benchmark {unknown[0]!r}; available: {', '.join(avail) or 'none'}"))
    parts = [f"# slimcaching benchmarks\n\n{datetime.now(timezone.utc).isoformat(timespec='seconds')}, "
             f"{platform.platform()}, Python {platform.python_version()}\n"]
    failed = []
    for area in areas:
        buf = io.StringIO()
        sink = _Tee(buf, sys.stdout) if echo else buf
        t0 = time.perf_counter()
        argv = sys.argv
        sys.argv = [f"perf_{area}"] + ([] if full else STANDARD_ARGS.get(area, []))
        try:
            with contextlib.redirect_stdout(sink):
                mod = importlib.import_module(f"benchmarks.perf_{area}")
                mod.main()
            status = ""
        except (Exception, SystemExit) as exc:  # one broken benchmark must not stop the others
            if isinstance(exc, SystemExit) and not exc.code:
                status = ""
            else:
                failed.append(area)
                status = "\n**failed**:\n\n```\n" + traceback.format_exc(limit=5) + "```\n"
                if echo:
                    print(status, file=sys.stderr)
        finally:
            sys.argv = argv
        parts.append(f"\n## perf_{area} ({time.perf_counter() - t0:.1f} s)\n\n{buf.getvalue()}{status}")
    return "".join(parts), failed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--only", help="comma-separated areas (default: all); see --list")
    p.add_argument("--list", action="store_true", help="list the available benchmarks and exit")
    p.add_argument("--output", "-o", default="bench-results.md", help="markdown file (default bench-results.md)")
    p.add_argument("--full", action="store_true",
                   help="run every benchmark with its own defaults (formulations up to the largest size: hours)")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(available()))
        return 0
    from slimcaching.errors import InputError

    try:
        text, failed = run_benchmarks(args.only.split(",") if args.only else None, full=args.full)
    except InputError as exc:
        print(exc.one_line(), file=sys.stderr)
        return 2
    Path(args.output).write_text(text)
    print(f"\nwrote {args.output}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
