from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_examples() -> Path:
    """The worked example of MODEL.md section 5 (shared/examples next to the repo, or a copy in tests/data)."""
    for cand in (ROOT.parent / "shared" / "examples", ROOT / "tests" / "data"):
        if (cand / "tiny.json").exists():
            return cand
    pytest.skip("worked example not found")
