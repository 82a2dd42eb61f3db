"""The certificates kept as data (``benchmarks/records/<suite>-certify.jsonl``): one per shipped file of the
suite, each passing the import's checks (the file's hash, the placement re-evaluated to its latency, no bound
above any latency), so the tables built from them rest on checked numbers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.perf_paper_table import SUITES, suite_files, suite_records
from slimcaching.analysis.certified import import_certificates
from slimcaching.errors import InputError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the records name their instances relative to the repository root


@pytest.mark.parametrize("suite", SUITES)
def test_each_suite_keeps_one_checked_certificate_per_shipped_file(suite, tmp_path):
    (path,) = suite_records(suite)
    lines = [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert sorted(d["file"] for d in lines) == suite_files(suite)
    for d in lines:
        assert d["bound"] <= d["latency"] * (1 + 1e-9)
        assert d["gap"] == pytest.approx((d["latency"] - d["bound"]) / d["latency"], rel=1e-9, abs=1e-15)
    assert import_certificates(str(tmp_path / "s.sqlite"), path) == len(lines)


def test_a_record_whose_bound_is_above_a_kept_latency_is_refused(tmp_path):
    (path,) = suite_records("mixed-precision")
    lines = [json.loads(ln) for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    d = min(lines, key=lambda d: d["runtime_s"])  # any record; the quickest to re-check
    d["bound"] = d["latency"] * 1.001
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(d) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="bound"):
        import_certificates(str(tmp_path / "s.sqlite"), bad)


def test_the_mixed_precision_table_uses_that_suites_records(tmp_path):
    """``--suite`` picks the records; ``--files`` narrows the rows, and only their certificates are imported."""
    from benchmarks.perf_paper_table import main

    f = "instances/mixed-precision/mixed-switch-base-8-wifi-rtx.json"
    out = main(["--suite", "mixed-precision", "--files", f, "--algorithms", "cloud",
                "--db", str(tmp_path / "t.sqlite"), "--hard-timeout", "60"])
    assert out.startswith("### The mixed-precision suite")
    assert "1 certificate(s) imported from benchmarks/records/mixed-precision-certify.jsonl" in out
    row = next(ln for ln in out.splitlines() if ln.startswith("| mixed-switch-base-8-wifi-rtx |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert "optimum" in cells and "0.118347" in cells  # the kept certificate: proven optimal
