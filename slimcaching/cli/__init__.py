"""The ``slimcaching`` command line (entry point :func:`main`)."""
from __future__ import annotations

from .main import build_parser, main

__all__ = ["main", "build_parser"]
