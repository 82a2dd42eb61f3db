"""Shared helpers of the ``perf_*`` benchmark scripts: medians, the machine, tables."""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable

__all__ = ["median_time", "machine", "target_table"]


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls of ``fn`` and the last call's return value."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def machine() -> str:
    """One line naming the processor, core count and Python version."""
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def target_table(title: str, rows: list[tuple[str, float, float, str]], *, unit: str = "s") -> str:
    """Markdown table of ``(measure, median seconds, target seconds or nan, note)`` rows."""
    scale = {"s": 1.0, "ms": 1e3}[unit]
    fmt = "{:.3f}"
    lines = [f"### {title} (machine: {machine()})", "",
             "| measure | median | target | met | note |", "|---|---:|---:|:---:|---|"]
    for name, t, target, note in rows:
        has_target = target == target
        met = ("yes" if t <= target else "NO") if has_target else ""
        tt = f"{fmt.format(target * scale)} {unit}" if has_target else ""
        lines.append(f"| {name} | {fmt.format(t * scale)} {unit} | {tt} | {met} | {note} |")
    return "\n".join(lines)
