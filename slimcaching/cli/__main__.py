"""``python -m slimcaching.cli``: the same as the ``slimcaching`` command."""
from __future__ import annotations

from .main import main

raise SystemExit(main())
