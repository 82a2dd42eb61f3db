"""Provenance of results: versions read once per process."""
from __future__ import annotations

from importlib import metadata

from slimcaching import result


def test_versions_read_once_per_process_and_returned_as_a_copy(monkeypatch):
    calls = []
    real = metadata.version

    def counting(pkg):
        calls.append(pkg)
        return real(pkg)

    result._versions.cache_clear()
    monkeypatch.setattr(metadata, "version", counting)
    first = result.versions()
    for _ in range(5):
        assert result.versions() == first
    assert sorted(calls) == sorted(["slimcaching", "numpy", "pyomo", "highspy"])  # one read each
    first["numpy"] = "changed by a caller"
    assert result.versions()["numpy"] != "changed by a caller"
    result._versions.cache_clear()
