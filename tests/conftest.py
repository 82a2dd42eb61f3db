from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def worked_example() -> Path:
    """The worked example of docs/model.md section 5 (``tests/data``)."""
    return ROOT / "tests" / "data"
