"""Price-and-branch with and without perturbed columns: ``perf_certify --perturb`` as its own benchmark.

Usage (from the repository root)::

    python -m benchmarks.perf_perturb [--files F ...] [--rounds 40] [--spread 0.1]

``make bench`` runs it on the four files below (about a minute on 2 cores):
the two 4-node Mixtral paper files, ``mixed-phi-3.5-moe-5g-device`` and
``mixed-switch-base-8-wifi-rtx``.  No time limits: the latencies are the
same on any machine, only the CPU column depends on it.  The table is
``docs/formulations.md``, "More columns for price-and-branch".
"""
from __future__ import annotations

import sys

from benchmarks import perf_certify

__all__ = ["main", "DEFAULT_FILES"]

DEFAULT_FILES = ["instances/paper/paper-mixtral-8x7b-wifi-rtx-bf16.json",
                 "instances/paper/paper-mixtral-8x7b-wifi-jetson-int4.json",
                 "instances/mixed-precision/mixed-phi-3.5-moe-5g-device.json",
                 "instances/mixed-precision/mixed-switch-base-8-wifi-rtx.json"]


def main(argv: list[str] | None = None) -> str:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--files" not in args:
        args += ["--files", *DEFAULT_FILES]
    return perf_certify.main(["--perturb", *args])


if __name__ == "__main__":  # pragma: no cover
    main()
