"""Instance grids for the figures: one parameter varies, the rest is fixed.

Each grid writes seeded :func:`~slimcaching.instances.generators.random_instance`
files into a folder (the *suite* name used by the figures) and records the
varied parameter in the instance metadata (``"sweep": {"axis", "value"}``).

Examples
--------
>>> files = sweep("capacity_fraction", [0.1, 0.2], out_dir="grid/capacity", seeds=[0])  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import InputError

__all__ = ["AXES", "BASE", "sweep", "standard_sweeps"]

#: Parameters of :func:`random_instance` a grid can vary.
AXES = ("capacity_fraction", "top_k", "nodes", "users", "experts", "layers")

#: The fixed point of every grid (small enough for the exact solver).
BASE: dict[str, Any] = {"layers": 2, "experts": 6, "top_k": 2, "nodes": 2, "users": 3,
                        "capacity_fraction": 0.25, "skew": 1.0}


def sweep(axis: str, values: Iterable[Any], *, out_dir: str | Path, seeds: Sequence[int] = (0, 1, 2),
          base: dict[str, Any] | None = None) -> list[Path]:
    """Write one instance per (value, seed) with ``axis`` set to ``value``.

    Returns the files written (``<out_dir>/<axis>-<value>-s<seed>.json``).
    """
    from ..instances.generators import random_instance
    from ..instances.io import write_instance

    if axis not in AXES:
        raise InputError("--axis", ("", f"unknown sweep axis {axis!r}; valid: {', '.join(AXES)}"))
    params = {**BASE, **(base or {})}
    out = Path(out_dir)
    files = []
    for v in values:
        for s in seeds:
            p = {**params, axis: v, "seed": int(s)}
            if axis == "top_k":
                p["experts"] = max(int(p["experts"]), int(v))
            if axis == "experts":
                p["top_k"] = min(int(p["top_k"]), int(v))
            inst = random_instance(name=f"{out.name}-{axis}-{v}-s{s}", **p)
            inst.metadata["sweep"] = {"axis": axis, "value": v}
            f = out / f"{axis}-{v}-s{s}.json"
            write_instance(inst, f)
            files.append(f)
    return files


def standard_sweeps(out_dir: str | Path, *, seeds: Sequence[int] = (0, 1, 2),
                    base: dict[str, Any] | None = None) -> dict[str, list[Path]]:
    """The grids behind the standard figures, one sub-folder each.

    ``capacity`` (fraction 0.05 .. 0.5), ``topk`` (1 .. 4), ``nodes`` (1 .. 4)
    and ``scaling`` (experts 4 .. 32, for runtime slopes).
    """
    out = Path(out_dir)
    return {
        "capacity": sweep("capacity_fraction", [0.05, 0.1, 0.2, 0.3, 0.5], out_dir=out / "capacity",
                          seeds=seeds, base=base),
        "topk": sweep("top_k", [1, 2, 3, 4], out_dir=out / "topk", seeds=seeds, base=base),
        "nodes": sweep("nodes", [1, 2, 3, 4], out_dir=out / "nodes", seeds=seeds, base=base),
        "scaling": sweep("experts", [4, 8, 16, 32], out_dir=out / "scaling", seeds=seeds,
                         base={**(base or {}), "top_k": 2}),
    }
