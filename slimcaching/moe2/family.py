"""The MoE² family as the analysis runner sees it (see :class:`slimcaching.analysis.families.Family`).

Ratios are stated on the maximised objective: a row's ``gain`` is
``sum_k lambda_k q_k(S_k)``, and an exact run's ``bound`` is already an upper
bound on the optimum (``gain_upper``).
"""
from __future__ import annotations

from typing import Any

from ..errors import InputError
from .algorithms import MOE2_ALGORITHMS
from .instance import MOE2_FORMATS, Moe2Instance, moe2_from_dict

__all__ = ["Moe2Family"]


class Moe2Family:
    """MoE² expert selection (``docs/model.md`` section 2), via :mod:`slimcaching.moe2.algorithms`."""

    name = "moe2"
    exact_names = ("exact", "exhaustive")

    def accepts(self, fmt: str) -> bool:
        return fmt in MOE2_FORMATS

    def from_dict(self, data: Any, file: str) -> Moe2Instance:
        return moe2_from_dict(data, file)

    def algorithm_names(self) -> list[str]:
        return list(MOE2_ALGORITHMS)

    def describe(self, instance: Moe2Instance) -> dict[str, Any]:
        return {
            "instance_hash": instance.content_hash(), "instance_name": instance.name,
            "L": None, "N": int(instance.M), "U": int(instance.C),
            "top_k": None, "cap_frac": None, "size": int(instance.M),
            "meta": dict(instance.metadata or {}),
        }

    def run(self, instance: Moe2Instance, algorithm: str, *, seed: int | None, time_limit: float | None,
            params: dict[str, Any]) -> dict[str, Any]:
        if algorithm not in MOE2_ALGORITHMS:
            raise InputError("--algorithms", ("", f"unknown MoE² algorithm {algorithm!r}; valid: "
                                                  f"{', '.join(MOE2_ALGORITHMS)}"))
        res = MOE2_ALGORITHMS[algorithm](instance, seed=seed, time_limit=time_limit, **params)
        return {
            "status": str(res.status), "gain": float(res.objective),
            "gain_upper": None if res.bound is None else float(res.bound), "objective": float(res.objective),
            "energy": float(res.energy), "runtime_s": float(res.runtime_s), "feasible": bool(res.feasible),
            "oracle_calls": int(res.oracle_calls), "placement": [list(map(int, s)) for s in res.selection],
            "info": res.info, "message": res.message,
        }
