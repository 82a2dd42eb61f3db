"""Problem families the analysis tools understand.

A *family* adapts one problem (expert caching, MoE² expert selection) to the
runner, the store and the reports: how to read an instance, which algorithms
exist, which of them are exact references, and how to turn one run into a
store row.  The rest of :mod:`slimcaching.analysis` only sees rows, so every
table and figure works for both families.

Ratios are always stated on a *maximised* quantity, the row's ``gain``:

* caching: ``gain = R(x) = T(empty) - T(x)``; an exact run's lower bound
  ``T_lb`` on ``T(opt)`` gives ``gain_upper = T(empty) - T_lb``;
* MoE²: ``gain`` is the objective ``sum_k lambda_k q_k(S_k)``; an exact run's
  ``bound`` is already an upper bound on the optimum.

The family of a file is read from its ``"format"`` tag (:func:`detect`).
"""
from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

from ..errors import InputError
from ..fileio import read_json
from ..moe2.family import Moe2Family

__all__ = ["Family", "CachingFamily", "Moe2Family", "FAMILIES", "detect", "load", "get_family", "certificate_row"]

CACHING_FORMAT = "slimcaching-instance/1"


@runtime_checkable
class Family(Protocol):
    """What the runner needs from a problem family."""

    name: str
    #: names of the exact references, most trusted first
    exact_names: tuple[str, ...]

    def accepts(self, fmt: str) -> bool:
        """Whether a file with this ``"format"`` tag belongs to the family."""

    def from_dict(self, data: Any, file: str) -> Any:
        """Validate a decoded file; raise :class:`InputError` when malformed."""

    def algorithm_names(self) -> list[str]:
        """Every algorithm the family can run."""

    def describe(self, instance: Any) -> dict[str, Any]:
        """Instance columns of a row: hash, name, sizes, metadata."""

    def run(self, instance: Any, algorithm: str, *, seed: int | None, time_limit: float | None,
            params: dict[str, Any]) -> dict[str, Any]:
        """Run one algorithm; return the result columns of a row."""


class CachingFamily:
    """Expert caching (``docs/model.md`` section 1), algorithms from :data:`slimcaching.algorithms.REGISTRY`.

    Besides the registry it runs ``lp-bound`` (parameter ``formulation``): the
    LP relaxation bound of a MILP formulation, for the formulation table.
    """

    name = "caching"
    exact_names = ("exact", "brute-force")

    def accepts(self, fmt: str) -> bool:
        return fmt == CACHING_FORMAT

    def from_dict(self, data: Any, file: str) -> Any:
        from ..instances.validate import instance_from_dict

        return instance_from_dict(data, file=file)

    def algorithm_names(self) -> list[str]:
        from ..algorithms import algorithm_names

        return [*algorithm_names(), "lp-bound", "certify"]

    def describe(self, instance: Any) -> dict[str, Any]:
        model = float((instance.experts * instance.expert_size).sum())
        return {
            "instance_hash": instance.content_hash(), "instance_name": instance.name,
            "L": instance.L, "N": instance.N, "U": instance.U, "top_k": instance.max_top_k,
            "cap_frac": float(instance.capacity.mean() / model) if model > 0 else None,
            "size": int(instance.N * instance.experts.sum()), "meta": instance.metadata,
        }

    def run(self, instance: Any, algorithm: str, *, seed: int | None, time_limit: float | None,
            params: dict[str, Any]) -> dict[str, Any]:
        if algorithm == "lp-bound":
            return self._lp_bound(instance, params)
        if algorithm == "certify":
            return self._certify(instance, seed=seed, time_limit=time_limit, params=params)
        from ..algorithms import run

        res = run(instance, algorithm, seed=seed, time_limit=time_limit, **params)
        upper = None if res.bound is None else res.empty_latency - res.bound
        return {
            "status": str(res.status), "gain": res.reduction, "gain_upper": upper,
            "latency": res.latency, "reduction": res.reduction, "empty_latency": res.empty_latency,
            "bound": res.bound, "gap": res.gap, "runtime_s": res.runtime_s, "feasible": res.feasible,
            "oracle_calls": res.info.get("oracle_calls") if isinstance(res.info, dict) else None,
            "placement": res.placement.elements().tolist(), "info": res.info, "message": res.message,
        }

    def _certify(self, instance: Any, *, seed: int | None, time_limit: float | None,
                 params: dict[str, Any]) -> dict[str, Any]:
        """A ``certify`` run as a row: its placement, and its best bound as ``gain_upper``."""
        from ..algorithms.certify import certify

        cert = certify(instance, time_limit=time_limit, seed=seed, **params)
        return certificate_row(cert.to_dict(instance))

    def _lp_bound(self, instance: Any, params: dict[str, Any]) -> dict[str, Any]:
        from ..formulations.solve import lp_bound
        from ..objective import empty_latency

        t0 = time.perf_counter()
        out = lp_bound(instance, **params)
        runtime = time.perf_counter() - t0
        info: dict[str, Any] = {}
        if isinstance(out, dict):
            info = dict(out)
            value = out.get("bound", out.get("lp_bound"))
        else:
            value = getattr(out, "bound", out)
            info = dict(getattr(out, "info", {}) or {})
        bound = float(value)
        t_empty = empty_latency(instance)
        return {
            "status": "feasible", "gain": None, "gain_upper": t_empty - bound, "latency": None,
            "reduction": None, "empty_latency": t_empty, "bound": bound, "gap": None,
            "runtime_s": float(info.get("solve_s", info.get("runtime_s", runtime))), "feasible": True,
            "placement": None, "info": info, "message": "LP relaxation bound",
        }


def certificate_row(cert: dict[str, Any]) -> dict[str, Any]:
    """The store columns of a ``certify`` result (the JSON object of ``slimcaching certify``).

    ``gain_upper = T(empty) - bound``, so the certificate's bound becomes a
    reference of every ratio on the instance; ``info`` keeps which method
    produced the bound and the latency, and when.
    """
    t_empty = float(cert["empty_latency"])
    bound_at = next((b["time_s"] for b in cert["bounds"]
                     if b["method"] == cert["bound_method"] and b["value"] == cert["bound"]), None)
    latency_at = next((i["time_s"] for i in cert["incumbents"]
                       if i["method"] == cert["latency_method"] and i["value"] == cert["latency"]), None)
    placement = [[n, l, e] for n, (_, pairs) in enumerate(cert["placement"].items()) for l, e in pairs]
    return {
        "status": "optimal" if cert["status"] == "optimal" else "feasible",
        "gain": t_empty - cert["latency"], "gain_upper": t_empty - cert["bound"], "latency": cert["latency"],
        "reduction": t_empty - cert["latency"], "empty_latency": t_empty, "bound": cert["bound"],
        "gap": cert["gap"], "runtime_s": cert["runtime_s"], "feasible": True, "placement": sorted(placement),
        "info": {"bound_method": cert["bound_method"], "bound_time_s": bound_at,
                 "latency_method": cert["latency_method"], "latency_time_s": latency_at, "cpu_s": cert.get("cpu_s"),
                 "bounds": cert["bounds"], "incumbents": cert["incumbents"]},
        "message": "certify",
    }


FAMILIES: dict[str, Family] = {"caching": CachingFamily(), "moe2": Moe2Family()}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise InputError("--family", ("", f"unknown family {name!r}; valid: {', '.join(FAMILIES)}"))
    return FAMILIES[name]


def detect(data: Any, file: str) -> Family:
    """The family of a decoded file, from its ``"format"`` tag."""
    fmt = data.get("format") if isinstance(data, dict) else None
    if not isinstance(fmt, str):
        raise InputError(file, ("$.format", "missing \"format\" tag; expected an instance file "
                                            f"({CACHING_FORMAT!r} or a MoE² instance)"))
    for fam in FAMILIES.values():
        if fam.accepts(fmt):
            return fam
    raise InputError(file, ("$.format", f"unknown format {fmt!r}; expected {CACHING_FORMAT!r} "
                                        "or a MoE² instance"))


def load(path: str) -> tuple[Family, Any]:
    """Read an instance file of any family: ``(family, instance)``."""
    data = read_json(path)
    fam = detect(data, str(path))
    return fam, fam.from_dict(data, str(path))

