"""One result type for every algorithm and the exact solver.

Like scipy's ``OptimizeResult`` and Pyomo's solver results: the *status* (why
the method stopped / what it can claim) is a string enum; values that do not
exist for a method (a bound for a heuristic, a gap) are ``None``, never absent.
The latency and reduction are always those of the project's one evaluator.
"""
from __future__ import annotations

import functools
import math
import platform
import sys
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable

from .instances.model import Instance, Placement

__all__ = ["Status", "Result", "Guarantee", "PROVEN", "CONJECTURED", "make_result", "versions"]


class Status(str, Enum):
    """What a result can claim.

    ``optimal``    proven optimal (exact solver or brute force);
    ``feasible``   feasible, with a proven bound that does not close the gap;
    ``heuristic``  feasible, no optimality claim;
    ``time_limit`` stopped by the time limit, best incumbent returned;
    ``infeasible`` no feasible solution exists (cannot happen for caching);
    ``unknown``    the back end reported something unrecognised (raw status in ``message``).
    """

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    HEURISTIC = "heuristic"
    TIME_LIMIT = "time_limit"
    INFEASIBLE = "infeasible"
    UNKNOWN = "unknown"

    def __str__(self) -> str:  # json/CLI friendly
        return self.value


PROVEN = "proven"
CONJECTURED = "conjectured"
GUARANTEE_STATUSES = (PROVEN, CONJECTURED)


@dataclass(frozen=True)
class Guarantee:
    """A claimed approximation guarantee, kept as data next to the algorithm.

    ``R(alg) >= ratio * R(opt)`` whenever ``applies(instance, params)`` is true
    and the run was not cut short by its time limit.

    Attributes
    ----------
    ratio : float
        The factor on the reduction ``R``.
    regime : str
        Human-readable regime (e.g. "K = 1, one node, partial enumeration p >= 3").
    reference : str
        Citation of the theorem (or, for a conjecture, of the evidence).
    applies : callable (Instance, dict) -> bool
        Whether the regime holds for this instance and these parameters.
    status : {"proven", "conjectured"}
        ``"proven"``: a proof exists (in the docstring of the algorithm or the
        cited reference).  ``"conjectured"``: stated without proof; the
        guarantee checker reports the runs it covers but never counts them as
        verified, and a run below it refutes it.
    """

    ratio: float
    regime: str
    reference: str
    applies: Callable[[Instance, dict], bool]
    status: str = PROVEN

    def __post_init__(self) -> None:
        if self.status not in GUARANTEE_STATUSES:
            raise ValueError(f"Guarantee.status must be one of {', '.join(GUARANTEE_STATUSES)}, got {self.status!r}")

    @property
    def proven(self) -> bool:
        return self.status == PROVEN

    def text(self) -> str:
        claim = f"R(alg) >= {self.ratio:.6g} R(opt) when {self.regime} [{self.reference}]"
        return claim if self.proven else f"conjectured, not proven: {claim}"


def versions() -> dict[str, str]:
    """Versions of Python, slimcaching and the numerical back ends (for provenance).

    Read once per process (package metadata costs about 10 ms a call, which
    dominated a benchmark run of a fast algorithm); each call returns a fresh
    copy, so a caller may change it.
    """
    return dict(_versions())


@functools.lru_cache(maxsize=1)
def _versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("slimcaching", "numpy", "pyomo", "highspy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:  # pragma: no cover - editable installs
            out[pkg] = "unknown"
    return tuple(out.items())


@dataclass
class Result:
    """What every algorithm returns.

    Attributes
    ----------
    algorithm : str
    status : Status
    placement : Placement
    latency : float          ``T(x)`` from the evaluator.
    reduction : float        ``R(x) = T(empty) - T(x)``.
    empty_latency : float    ``T(empty)``.
    bound : float or None    proven lower bound on ``T(opt)``.
    gap : float or None      ``(latency - bound) / latency``.
    runtime_s : float        wall time of the solve (not of reading files).
    params : dict            the parameters the method ran with (seed included).
    seed : int or None
    guarantee : str or None  text of the guarantee that applies to this run, if any.
    info : dict              what the method did (per-layer method, passes, oracle calls, ...).
    message : str            free text (back-end status, warnings).
    feasible : bool          storage constraints hold.
    """

    algorithm: str
    status: Status
    placement: Placement
    latency: float
    reduction: float
    empty_latency: float
    bound: float | None = None
    gap: float | None = None
    runtime_s: float = 0.0
    params: dict = field(default_factory=dict)
    seed: int | None = None
    guarantee: str | None = None
    info: dict = field(default_factory=dict)
    message: str = ""
    feasible: bool = True

    @property
    def success(self) -> bool:
        return self.feasible and self.status in (Status.OPTIMAL, Status.FEASIBLE, Status.HEURISTIC, Status.TIME_LIMIT)

    def to_placement_dict(self, instance: Instance) -> dict[str, Any]:
        """The ``slimcaching-placement/1`` object ``solve`` writes."""
        from .instances.io import placement_to_dict

        return placement_to_dict(
            instance, self.placement,
            algorithm=self.algorithm, params=_jsonable(self.params),
            latency=self.latency, reduction=self.reduction, empty_latency=self.empty_latency,
            status=str(self.status), bound=self.bound, gap=self.gap, runtime_s=self.runtime_s,
            seed=self.seed, guarantee=self.guarantee, info=_jsonable(self.info),
            message=self.message, instance_hash=instance.content_hash(), versions=versions(),
        )


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays and enums to plain JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def make_result(instance: Instance, placement: Placement, *, algorithm: str, status: Status | str,
                runtime_s: float, params: dict | None = None, seed: int | None = None,
                bound: float | None = None, guarantee: str | None = None,
                info: dict | None = None, message: str = "") -> Result:
    """Build a :class:`Result`, computing latency, reduction and feasibility with the evaluator.

    Algorithms call this last, so the numbers they report are the evaluator's.
    """
    from .objective import evaluate

    ev = evaluate(instance, placement)
    gap = None
    if bound is not None and ev.latency > 0:
        gap = max(0.0, (ev.latency - bound) / ev.latency)
    return Result(
        algorithm=algorithm, status=Status(status), placement=placement, latency=ev.latency,
        reduction=ev.reduction, empty_latency=ev.empty_latency, bound=bound, gap=gap,
        runtime_s=float(runtime_s), params=dict(params or {}), seed=seed, guarantee=guarantee,
        info=dict(info or {}), message=message, feasible=ev.feasible,
    )
