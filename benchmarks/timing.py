"""Shared helpers of the ``perf_*`` benchmark scripts: CPU time with spread, paired ratios,
single-threaded BLAS, log-log slopes, the machine, tables.

The machine these run on is shared, so a single wall-clock median says little.
The helpers here follow pyperf's reporting (median and interquartile range over
repeats, after a warm-up call) but measure **CPU time** of the process
(``time.process_time``), and compare methods **in the same run**: the calls of
the methods being compared are interleaved round by round, and a ratio is the
median of the per-round ratios, so a burst of load hits both sides.

BLAS is pinned to one thread while timing (:func:`single_threaded`, through
threadpoolctl, the ``bench`` extra): a multi-threaded BLAS call burns CPU time
on every core for tiny products and makes CPU time meaningless.  On some
processors the environment sets ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``)
to pick an older, slower OpenBLAS kernel; :func:`machine` names the kernel in
use so a table says which one it measured.
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = ["Timing", "cpu_time", "paired", "ratio", "single_threaded", "blas", "machine", "loglog_slope",
           "median_time", "target_table"]


@dataclass(frozen=True)
class Timing:
    """CPU seconds of repeated calls: median and interquartile range."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def iqr(self) -> float:
        if len(self.values) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(self.values, n=4, method="inclusive")
        return q3 - q1

    def fmt(self, unit: str = "ms", digits: int = 3) -> str:
        """``"median ± IQR unit"`` (pyperf style)."""
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
        return f"{self.median * scale:.{digits}f} ± {self.iqr * scale:.{digits}f} {unit}"


def cpu_time(fn: Callable[[], Any], repeat: int, *, inner: int = 1, warmup: int = 1) -> tuple[Timing, Any]:
    """CPU time of ``fn`` (per call, averaged over ``inner`` calls per repeat) and its last value."""
    out = None
    for _ in range(warmup):
        out = fn()
    vals = []
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        for _ in range(inner):
            out = fn()
        vals.append((time.process_time() - t0) / inner)
    return Timing(tuple(vals)), out


def paired(fns: dict[str, Callable[[], Any]], repeat: int, *, inner: int = 1, warmup: int = 1
           ) -> dict[str, Timing]:
    """CPU time of several functions, interleaved round by round (see the module docstring)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    vals: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, repeat)):
        for name, fn in fns.items():
            t0 = time.process_time()
            for _ in range(inner):
                fn()
            vals[name].append((time.process_time() - t0) / inner)
    return {k: Timing(tuple(v)) for k, v in vals.items()}


def ratio(a: Timing, b: Timing) -> Timing:
    """Per-round ratios ``a / b`` of two :func:`paired` timings (median and IQR of the ratio)."""
    return Timing(tuple(x / y for x, y in zip(a.values, b.values) if y > 0))


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Pin BLAS (and OpenMP) thread pools to one thread for the block."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - the bench extra
        raise SystemExit("benchmarks need threadpoolctl: pip install -e '.[bench]'") from exc
    with threadpool_limits(limits=1):
        yield


def blas() -> str:
    """The BLAS in use: library, kernel (architecture) and threads, and the OpenBLAS overrides set."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return "BLAS unknown (threadpoolctl not installed)"
    libs = [f"{i.get('internal_api')} {i.get('version') or ''} {i.get('architecture') or ''} "
            f"({i.get('num_threads')} threads)".replace("  ", " ")
            for i in threadpool_info() if i.get("user_api") == "blas"]
    env = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ]
    return (", ".join(libs) or "no BLAS found") + ("; " + ", ".join(env) if env else "; OPENBLAS_CORETYPE unset")


def machine() -> str:
    """One line naming the processor, core count, Python, numpy and the BLAS kernel."""
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, numpy {np.__version__}, {blas()}")


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x`` (``nan`` with fewer than two points)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls of ``fn`` and the last call's return value."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


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
