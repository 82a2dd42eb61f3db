"""Package attributes imported on first use (PEP 562).

A package's ``__init__`` that re-exports names from heavy submodules (Pyomo
behind the formulations, the MILP behind the MoE² registry) would make every
command pay for those imports, ``--help`` included.  :func:`lazy_exports`
gives the package a module ``__getattr__`` and ``__dir__`` that import a name's
submodule when the name is first asked for, and keep the value.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public names live in the submodules ``where[name]``.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    where : dict
        Public name -> relative module name (``".solve"``).

    Returns
    -------
    tuple
        The two module-level functions to bind in the package's namespace.
    """

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
