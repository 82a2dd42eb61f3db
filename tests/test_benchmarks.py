"""The benchmark entry point (``make bench``), outside the installed package."""
from __future__ import annotations

import pytest

from slimcaching.errors import InputError


def test_bench_entry_point_lists_and_rejects(capsys):
    from benchmarks.run import available, main, run_benchmarks

    assert "foundation" in available()
    assert main(["--list"]) == 0 and "foundation" in capsys.readouterr().out
    with pytest.raises(InputError, match="unknown benchmark 'nope'"):
        run_benchmarks(["nope"])
