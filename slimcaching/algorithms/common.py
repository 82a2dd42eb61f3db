"""Small helpers shared by the algorithm modules (option checks)."""
from __future__ import annotations

from typing import Sequence

from ..errors import InputError

__all__ = ["reject_unknown"]


def reject_unknown(algorithm: str, unknown: dict, valid: Sequence[str]) -> None:
    """Raise :class:`InputError` for parameters an algorithm does not take (e.g. from ``--param``)."""
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError("--param", ("", f"{algorithm} does not take {names}; valid parameters: "
                                         f"{', '.join(valid) or 'none'}"))
