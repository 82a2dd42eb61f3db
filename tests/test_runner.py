"""The sweep runner: resumption, parallel executors, parsing, error rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimcaching.algorithms import REGISTRY
from slimcaching.analysis.runner import parse_algorithms, plan, resolve_inputs, run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.errors import InputError
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import write_instance
from slimcaching.instances.model import Placement
from slimcaching.result import make_result

ALGS = "brute-force,successive"


def write_suite(folder: Path, n: int = 3, nodes: int = 2) -> list[Path]:
    files = []
    for s in range(n):
        inst = random_instance(layers=2, experts=3, top_k=2, nodes=nodes, users=2, seed=s, capacity_fraction=0.3)
        f = folder / f"inst-{s}.json"
        write_instance(inst, f)
        files.append(f)
    return files


def failing(instance, *, seed=None, time_limit=None, **params):
    raise RuntimeError("planted failure")


def cloud_like(instance, *, seed=None, time_limit=None, **params):
    return make_result(instance, instance.empty_placement(), algorithm="cloud-like", status="heuristic",
                       runtime_s=0.0, params=params, seed=seed)


def _stable(rows):
    keep = ("key", "status", "gain", "latency", "reduction", "feasible", "placement", "family", "L", "N", "U")
    return {r["key"]: {k: r[k] for k in keep} for r in rows}


# ------------------------------------------------------------------ parsing
def test_parse_algorithms_with_parameters():
    assert parse_algorithms("greedy, exact[formulation=assignment,mip_gap=0],maxconv[eps=0.05]") == [
        ("greedy", {}), ("exact", {"formulation": "assignment", "mip_gap": 0}), ("maxconv", {"eps": 0.05})]


@pytest.mark.parametrize("spec, msg", [
    ("greedy[eps=1", "unbalanced"), ("greedy]", "unbalanced"), ("greedy[eps]", "expected k=v"),
    ("", "no algorithm given"), ("greedy[a=1]x", r"expected name\[k=v"),
])
def test_parse_algorithms_errors(spec, msg):
    with pytest.raises(InputError, match=msg):
        parse_algorithms(spec)


def test_resolve_inputs(tmp_path):
    files = write_suite(tmp_path / "suite", 2)
    (tmp_path / "suite" / "notes.txt").write_text("x")
    assert resolve_inputs([tmp_path / "suite", files[0]]) == files
    with pytest.raises(InputError, match="no such file, folder or suite"):
        resolve_inputs([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no"):
        resolve_inputs([tmp_path / "empty"])


def test_unknown_algorithm_and_non_instances(tmp_path):
    files = write_suite(tmp_path / "s", 1)
    with pytest.raises(InputError, match="unknown algorithm 'nope'"):
        plan(files, "successive,nope")
    placement = tmp_path / "s" / "p.json"
    placement.write_text('{"format": "slimcaching-placement/1", "cache": {}}')
    tasks, notes = plan(resolve_inputs([tmp_path / "s"]), "successive")
    assert len(tasks) == 1 and any("not instances" in n for n in notes)
    with pytest.raises(InputError, match="unknown format"):
        plan([placement], "successive", explicit=[placement])


def test_duplicate_content_is_planned_once(tmp_path):
    f = write_suite(tmp_path / "a", 1)[0]
    g = tmp_path / "b.json"
    g.write_text(f.read_text().replace('"name": "', '"name": "copy-', 1))
    tasks, notes = plan([f, g], "successive", seeds=[0, 1])
    assert len(tasks) == 2 and any("duplicate" in n for n in notes)


# ------------------------------------------------------------------ resumption
def test_interrupted_sweep_resumes_without_loss_or_duplicates(tmp_path):
    write_suite(tmp_path / "s", 3)
    db = tmp_path / "r.sqlite"
    s1 = run_sweep([tmp_path / "s"], ALGS, db=db, seeds=[0, 1], progress=False, limit=4)
    assert s1.planned == 12 and s1.ran == 4
    seen = []

    def stop_after_two(row):
        seen.append(row["key"])
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep([tmp_path / "s"], ALGS, db=db, seeds=[0, 1], progress=False, on_row=stop_after_two)
    with ResultStore(db) as st:
        assert st.count() == 6  # every finished run was committed, nothing else
    s3 = run_sweep([tmp_path / "s"], ALGS, db=db, seeds=[0, 1], progress=False)
    assert s3.skipped == 6 and s3.ran == 6
    tasks, _ = plan(resolve_inputs([tmp_path / "s"]), ALGS, seeds=[0, 1])
    with ResultStore(db) as st:
        rows = list(st.rows())
    assert sorted(r["key"] for r in rows) == sorted(t.key for t in tasks)  # exactly one row per run
    s4 = run_sweep([tmp_path / "s"], ALGS, db=db, seeds=[0, 1], progress=False)
    assert s4.ran == 0 and s4.skipped == 12


def test_rows_carry_provenance(tmp_path):
    f = write_suite(tmp_path / "s", 1)[0]
    run_sweep([f], "successive[order=\"given\"]", db=tmp_path / "r.sqlite", seeds=[7], progress=False)
    with ResultStore(tmp_path / "r.sqlite") as st:
        (r,) = list(st.rows())
    from slimcaching.instances.io import read_instance
    from slimcaching.objective import evaluate

    inst = read_instance(f)
    assert r["instance_hash"] == inst.content_hash() and r["seed"] == 7
    assert r["params_dict"] == {"order": "given"} and r["instance_path"] == str(f)
    assert {"python", "numpy"} <= set(r["versions"])
    ev = evaluate(inst, Placement.from_elements(inst, r["placement"]))
    assert r["latency"] == pytest.approx(ev.latency, rel=1e-12) and r["gain"] == pytest.approx(ev.reduction)
    assert (r["L"], r["N"], r["U"], r["top_k"]) == (inst.L, inst.N, inst.U, inst.max_top_k)


def test_failing_algorithm_is_recorded_and_retried(tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "planted-failure", f"{__name__}:failing")
    f = write_suite(tmp_path / "s", 1)[0]
    s = run_sweep([f], "planted-failure,successive", db=tmp_path / "r.sqlite", progress=False)
    assert s.errors == 1
    with ResultStore(tmp_path / "r.sqlite") as st:
        err = [r for r in st.rows() if r["status"] == "error"]
    assert len(err) == 1 and "planted failure" in err[0]["message"]
    monkeypatch.setitem(REGISTRY, "planted-failure", f"{__name__}:cloud_like")
    s2 = run_sweep([f], "planted-failure,successive", db=tmp_path / "r.sqlite", progress=False)
    assert s2.ran == 1 and s2.errors == 0
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert st.count() == 2 and all(r["status"] != "error" for r in st.rows())


# ------------------------------------------------------------------ executors
def test_process_pool_and_dask_match_local(tmp_path):
    write_suite(tmp_path / "s", 2)
    dbs = {k: tmp_path / f"{k}.sqlite" for k in ("local", "pool", "dask")}
    run_sweep([tmp_path / "s"], ALGS, db=dbs["local"], progress=False, jobs=1)
    run_sweep([tmp_path / "s"], ALGS, db=dbs["pool"], progress=False, jobs=2)
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        run_sweep([tmp_path / "s"], ALGS, db=dbs["dask"], progress=False, executor="dask", client=client)
    rows = {k: _stable(ResultStore(v).rows()) for k, v in dbs.items()}
    assert len(rows["local"]) == 4
    assert rows["pool"] == rows["local"]
    assert rows["dask"] == rows["local"]


# ------------------------------------------------------------------ command line
def test_cli_bench_and_errors(tmp_path, capsys):
    from slimcaching.cli import main

    write_suite(tmp_path / "s", 1)
    db = str(tmp_path / "r.sqlite")
    assert main(["bench", str(tmp_path / "s"), "--algorithms", "successive", "--exact", "--db", db,
                 "--jobs", "1", "--no-progress", "--time-limit", "20"]) == 0
    out = capsys.readouterr().out
    assert "| caching | successive |" in out and "| caching | exact |" in out
    assert main(["bench", str(tmp_path / "s"), "--algorithms", "nope", "--db", db, "--no-progress"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["bench", str(tmp_path / "s"), "--jobs", "0"])
    assert exc.value.code == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "s"), "--address", "tcp://x:1", "--db", db]) == 2
    assert "only valid with --executor dask" in capsys.readouterr().err


# ------------------------------------------------------------------ the MoE² family
def test_moe2_family_rows_and_ratios(tmp_path):
    from slimcaching import moe2
    from slimcaching.analysis.report import load_frame, ratio_table, with_ratios

    for s in range(2):
        moe2.write_moe2_instance(moe2.generate_moe2(s, experts=5, categories=2), tmp_path / "m" / f"m{s}.json")
    write_suite(tmp_path / "m", 1)  # a caching instance in the same folder: families detected per file
    db = tmp_path / "r.sqlite"
    s = run_sweep([tmp_path / "m"], "dmo,greedy,exhaustive,successive", db=db, progress=False)
    assert any("'dmo' on 1 caching" in n for n in s.notes)
    assert any("'successive' on 2 moe2" in n for n in s.notes)
    df = with_ratios(load_frame(db))
    m = df[df["family"] == "moe2"].set_index(["instance_hash", "name"])
    assert len(m) == 6 and set(m["status"]) <= {"optimal", "heuristic", "feasible"}
    assert (m["oracle_calls"] >= 0).all() and (m["N"] == 5).all() and (m["U"] == 2).all()
    for h in set(m.index.get_level_values(0)):
        opt = m.loc[(h, "exhaustive")]
        assert opt["proven"] and opt["ratio"] == 1.0
        assert m.loc[(h, "dmo")]["ratio"] == pytest.approx(1.0, abs=1e-9)  # DMO is exact
        g = m.loc[(h, "greedy")]
        expected = g["objective"] / opt["objective"] if opt["objective"] > 0 else 1.0
        assert g["ratio"] == pytest.approx(expected) and g["ratio"] <= 1 + 1e-9
    t = ratio_table(df, ["family", "algorithm"]).set_index(["family", "algorithm"])
    assert t.loc[("moe2", "dmo"), "instances"] == 2 and t.loc[("caching", "greedy"), "instances"] == 0
    dmo_calls = m.xs("dmo", level=1)["oracle_calls"].to_numpy(dtype=float)
    assert t.loc[("moe2", "dmo"), "median_oracle_calls"] == pytest.approx(float(np.median(dmo_calls)))


def test_killed_process_resumes(tmp_path):
    """SIGKILL a running `slimcaching bench`, rerun it: every run exactly once."""
    import signal
    import subprocess
    import sys
    import time

    write_suite(tmp_path / "s", 4)
    db = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "slimcaching.cli", "bench", str(tmp_path / "s"), "--algorithms", ALGS,
           "--seeds", "0,1,2,3,4", "--jobs", "1", "--db", str(db), "--no-progress", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_at = None
    deadline = time.time() + 60
    while proc.poll() is None and time.time() < deadline:
        if db.exists():
            try:
                with ResultStore(db) as st:
                    n = st.count()
            except Exception:  # the table may not exist yet
                n = 0
            if n >= 3:
                proc.send_signal(signal.SIGKILL)
                killed_at = n
                break
        time.sleep(0.02)
    proc.wait()
    tasks, _ = plan(resolve_inputs([tmp_path / "s"]), ALGS, seeds=range(5))
    assert killed_at is not None, "the sweep never wrote 3 rows"
    s = run_sweep([tmp_path / "s"], ALGS, db=db, seeds=range(5), progress=False)
    with ResultStore(db) as st:
        keys = [r["key"] for r in st.rows()]
    assert sorted(keys) == sorted(t.key for t in tasks)
    assert s.skipped + s.ran == len(tasks) and s.skipped >= killed_at and s.ran > 0


def test_versions_are_read_once_and_returned_as_copies(monkeypatch):
    from importlib import metadata

    from slimcaching.result import versions

    first = versions()
    monkeypatch.setattr(metadata, "version", lambda pkg: (_ for _ in ()).throw(AssertionError("read again")))
    again = versions()  # cached: package metadata is not read again
    assert again == first and again is not first
    again["numpy"] = "changed"
    assert versions()["numpy"] == first["numpy"]
