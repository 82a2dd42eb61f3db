"""Certified ratios in the analysis package: certify rows, exact vs certified columns, the per-instance table."""
from __future__ import annotations

import json
import math

import pytest

from slimcaching.algorithms.certify import certify
from slimcaching.analysis.certified import certified_table, import_certificates
from slimcaching.analysis.report import load_frame, ratio_table, report, with_ratios
from slimcaching.analysis.runner import run_sweep
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_instance, write_instance


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    d = tmp_path_factory.mktemp("certified")
    for s in range(3):
        inst = random_instance(layers=3, experts=4, top_k=2, nodes=3, users=2, seed=s, capacity_fraction=0.3)
        write_instance(inst, d / "suite" / f"i{s}.json")
    path = d / "r.sqlite"
    run_sweep([d / "suite"], "successive,best,certify", db=path, seeds=[0], time_limit=20, progress=False)
    return d, path


def test_certify_rows_give_every_instance_a_proven_reference(suite):
    _, db = suite
    df = with_ratios(load_frame(db))
    cert = df[df["name"] == "certify"]
    assert len(cert) == 3 and (cert["bound"] <= cert["latency"] * (1 + 1e-9)).all()
    for h, g in df.groupby("instance_hash"):
        ok = g[g["feasible"] == 1]
        # every ratio is <= 1 (the reference is a proven optimum or an upper bound on R(opt))
        assert (ok["ratio"] <= 1 + 1e-9).all()
        if g["proven"].all():
            assert ok["ratio"].max() == pytest.approx(1.0, abs=1e-9)


def test_ratio_table_labels_exact_and_certified_ratios_separately(suite):
    _, db = suite
    df = with_ratios(load_frame(db))
    table = ratio_table(df)
    for col in ("exact_mean_ratio", "exact_min_ratio", "certified_instances", "certified_mean_ratio",
                "certified_min_ratio"):
        assert col in table.columns
    for _, row in table.iterrows():
        assert row["proven"] + row["certified_instances"] == row["instances"]
        if row["proven"] == 0:
            assert math.isnan(row["exact_mean_ratio"])
        if row["certified_instances"] == 0:
            assert math.isnan(row["certified_mean_ratio"])


def test_certified_table_names_the_best_bound_and_latency(suite):
    _, db = suite
    df = with_ratios(load_frame(db))
    t = certified_table(df)
    assert len(t) == 3
    for _, r in t.iterrows():
        g = df[df["instance_name"] == r["instance_name"]]
        assert r["bound"] == pytest.approx(g["bound"].max())
        assert r["best_latency"] == pytest.approx(g.loc[g["feasible"] == 1, "latency"].min())
        assert 0 <= r["certified_gap"] <= 1
        assert r["bound_method"].startswith("certify: ") or r["bound_method"] in set(g["algorithm"])
        assert r["reference"] in ("optimum", "bound")
    text = report(str(db), table="certified")
    assert "certified_gap" in text or "certified gap" in text.replace("_", " ")


def test_import_certificates_checks_the_instance_hash(suite, tmp_path):
    d, _ = suite
    f = d / "suite" / "i0.json"
    inst = read_instance(f)
    c = certify(inst, time_limit=10).to_dict(inst)
    c["file"] = str(f)
    rec = tmp_path / "c.jsonl"
    rec.write_text(json.dumps(c) + "\n")
    db = tmp_path / "x.sqlite"
    assert import_certificates(str(db), rec) == 1
    df = with_ratios(load_frame(db))
    assert list(df["name"]) == ["certify"] and df["bound"].iloc[0] == pytest.approx(c["bound"])
    c["instance_hash"] = "0" * 16
    rec.write_text(json.dumps(c) + "\n")
    with pytest.raises(InputError, match=r"line 1: instance_hash '0000000000000000' is not the hash"):
        import_certificates(str(db), rec)


def test_certified_table_refuses_a_bound_above_a_latency_and_forgives_rounding(suite):
    from slimcaching.formulations.bounds import BOUND_RTOL, InvalidBound

    _, db = suite
    df = with_ratios(load_frame(db))
    name = df["instance_name"].iloc[0]
    mine = df["instance_name"] == name
    best = df.loc[mine & (df["feasible"] == 1), "latency"].min()
    planted = df.copy()
    i = planted.index[mine & planted["bound"].notna()][0]
    planted.loc[i, "bound"] = best * (1 + 1e-6)  # a false bound: 1e-6 above a feasible latency
    with pytest.raises(InvalidBound, match="exceeds the latency"):
        certified_table(planted)
    planted.loc[i, "bound"] = best * (1 + 0.5 * BOUND_RTOL)  # rounding only: gap 0, not negative
    t = certified_table(planted)
    assert t.loc[t["instance_name"] == name, "certified_gap"].iloc[0] == 0.0
