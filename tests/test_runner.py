"""The sweep runner: resumption, parallel executors, parsing, error rows."""
from __future__ import annotations

import json
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
    p = plan(resolve_inputs([tmp_path / "s"]), "successive")
    assert len(p.tasks) == 1 and any("not instances" in n for n in p.notes) and not p.warnings
    # named explicitly next to an instance: a warning, and the instance still runs
    p = plan([placement, files[0]], "successive", explicit=[placement])
    assert len(p.tasks) == 1 and len(p.warnings) == 1 and "unknown format" in p.warnings[0]
    with pytest.raises(InputError, match="unknown format"):  # nothing left to run: the error itself
        plan([placement], "successive", explicit=[placement])


def test_duplicate_content_is_planned_once(tmp_path):
    f = write_suite(tmp_path / "a", 1)[0]
    g = tmp_path / "b.json"
    g.write_text(f.read_text().replace('"name": "', '"name": "copy-', 1))
    p = plan([f, g], "successive", seeds=[0, 1])
    assert len(p.tasks) == 2 and any("duplicate" in n for n in p.notes)


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
    tasks = plan(resolve_inputs([tmp_path / "s"]), ALGS, seeds=[0, 1]).tasks
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
POOL_ALGS = "brute-force,exact,successive,best,random"


def test_pool_and_dask_rows_equal_the_serial_rows(tmp_path):
    """Same rows from this process, 2 worker processes and a 2-thread in-process dask cluster.

    Exact runs included: two solves at once in one dask process broke Pyomo's
    output capture and hung the sweep.  Several instances and seeds, so runs
    are grouped per worker and instances are shipped (and re-shipped) to workers.
    """
    write_suite(tmp_path / "s", 4)
    dbs = {k: tmp_path / f"{k}.sqlite" for k in ("local", "pool", "dask")}
    kw = dict(seeds=[0, 1], progress=False, time_limit=30)
    run_sweep([tmp_path / "s"], POOL_ALGS, db=dbs["local"], jobs=1, hard_timeout=None, **kw)
    s = run_sweep([tmp_path / "s"], POOL_ALGS, db=dbs["pool"], jobs=2, **kw)
    assert s.errors == 0 and s.timeouts == 0
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        s = run_sweep([tmp_path / "s"], POOL_ALGS, db=dbs["dask"], executor="dask", client=client, **kw)
    assert s.errors == 0 and s.timeouts == 0
    rows = {k: _stable(ResultStore(v).rows()) for k, v in dbs.items()}
    assert len(rows["local"]) == 4 * 5 * 2
    assert rows["pool"] == rows["local"]
    assert rows["dask"] == rows["local"]
    by_key = {r["key"]: r for r in ResultStore(dbs["dask"]).rows()}
    for k, r in by_key.items():  # the exact runs are proven and agree with brute force
        if r["algorithm"] == "exact":
            bf = by_key[k.replace("|exact|", "|brute-force|")]
            assert r["status"] == "optimal" and r["latency"] == pytest.approx(bf["latency"], rel=1e-6)


def test_dispatcher_hands_out_every_run_once_grouped_by_instance():
    from slimcaching.analysis.runner import Task, _Dispatcher

    tasks = [Task(f"f{i}", "caching", f"h{i}", "greedy", "{}", s, None) for i in range(5) for s in range(7)]
    d = _Dispatcher(tasks)
    current = {0: None, 1: None}
    got = {0: [], 1: []}
    w = 0
    while d:
        t = d.take(current[w], {current[1 - w]})
        current[w] = t.instance_hash
        got[w].append(t)
        w = 1 - w
    assert sorted(got[0] + got[1], key=tasks.index) == tasks  # each run exactly once
    switches = sum(a.instance_hash != b.instance_hash for g in got.values() for a, b in zip(g, g[1:]))
    assert switches <= 5  # a worker changes instance only when its instance runs out (or at the end)


def test_hanging_algorithm_is_ended_and_stored_as_timeout(tmp_path, monkeypatch):
    import time

    from slimcaching.analysis.runner import default_hard_timeout

    monkeypatch.setitem(REGISTRY, "planted-hang", "planted:hang")
    f = write_suite(tmp_path / "s", 1)[0]
    db = tmp_path / "r.sqlite"
    t0 = time.monotonic()
    s = run_sweep([f], "planted-hang,successive", db=db, time_limit=0.2, jobs=1, progress=False)
    took = time.monotonic() - t0
    hard = default_hard_timeout(0.2)
    assert s.ran == 2 and s.timeouts == 1 and s.errors == 0
    with ResultStore(db) as st:
        rows = {r["algorithm"]: r for r in st.rows()}
    hung = rows["planted-hang"]
    assert hung["status"] == "timeout" and "hard timeout" in hung["message"]
    assert hard <= hung["wall_s"] <= hard + 1.0  # ended at its hard timeout, not later
    assert hung["info"] == {"hard_timeout": hard, "time_limit": 0.2} and hung["instance_hash"] == rows[
        "successive"]["instance_hash"]
    after = rows["successive"]  # the run after it, in a fresh worker (under load it may stop at its own limit)
    assert after["status"] in ("heuristic", "time_limit") and after["feasible"] == 1
    assert took < hard + 30  # the sweep finished (worker start-ups included)
    again = run_sweep([f], "planted-hang,successive", db=db, time_limit=0.2, jobs=1, progress=False)
    assert again.ran == 0 and again.skipped == 2  # a timeout is a result, not retried


def test_a_crashing_worker_is_an_error_row_and_the_sweep_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(REGISTRY, "planted-crash", "planted:crash")
    write_suite(tmp_path / "s", 1)
    db = tmp_path / "r.sqlite"
    s = run_sweep([tmp_path / "s"], "planted-crash,successive", db=db, jobs=2, hard_timeout=60, progress=False)
    assert s.ran == 2 and s.errors == 1
    with ResultStore(db) as st:
        rows = list(st.rows())
    crashed = [r for r in rows if r["algorithm"] == "planted-crash"]
    assert all(r["status"] == "error" and "killed by signal 9" in r["message"] for r in crashed)
    assert all(r["status"] == "heuristic" for r in rows if r["algorithm"] == "successive")
    monkeypatch.setitem(REGISTRY, "planted-crash", f"{__name__}:cloud_like")
    s2 = run_sweep([tmp_path / "s"], "planted-crash,successive", db=db, jobs=2, hard_timeout=60, progress=False)
    assert s2.ran == 1 and s2.errors == 0  # error rows are retried


def test_malformed_files_are_skipped_with_one_warning_each(tmp_path, capsys):
    import json

    from slimcaching.cli import main

    good = write_suite(tmp_path / "s", 2)
    (tmp_path / "s" / "broken.json").write_text('{"format": "slimcaching-instance/1", "layers": [')
    doc = json.loads(good[0].read_text())
    doc["nodes"][0]["capacity"] = -1
    (tmp_path / "s" / "negative.json").write_text(json.dumps(doc))
    db = tmp_path / "r.sqlite"
    assert main(["bench", str(tmp_path / "s"), "--algorithms", "successive,cloud", "--db", str(db),
                 "--jobs", "1", "--no-progress", "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("warning: ")]
    assert len(warnings) == 2, err
    assert any("broken.json" in w for w in warnings)
    assert any("negative.json" in w and "$.nodes[0].capacity" in w for w in warnings)
    with ResultStore(db) as st:
        assert st.count() == 4  # the two good files, both algorithms
    # a single malformed file named on its own: nothing to run, the error itself (exit 2, one line)
    assert main(["bench", str(tmp_path / "s" / "broken.json"), "--db", str(db), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.json" in err


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
    tasks = plan(resolve_inputs([tmp_path / "s"]), ALGS, seeds=range(5)).tasks
    assert killed_at is not None, "the sweep never wrote 3 rows"
    s = run_sweep([tmp_path / "s"], ALGS, db=db, seeds=range(5), progress=False)
    with ResultStore(db) as st:
        keys = [r["key"] for r in st.rows()]
    assert sorted(keys) == sorted(t.key for t in tasks)
    assert s.skipped + s.ran == len(tasks) and s.skipped >= killed_at and s.ran > 0


def test_the_runner_loads_no_solver_until_a_run_needs_one():
    """Workers and every command import the runner: Pyomo (0.7 CPU-s) waits until a MoE² file or a MILP."""
    import subprocess
    import sys

    from slimcaching.analysis.families import FAMILIES
    from slimcaching.moe2.instance import MOE2_FORMAT, MOE2_FORMATS

    assert all(FAMILIES["moe2"].accepts(f) for f in MOE2_FORMATS) and MOE2_FORMAT in MOE2_FORMATS
    assert not FAMILIES["moe2"].accepts("slimcaching-instance/1")
    out = subprocess.run([sys.executable, "-c", "import sys, slimcaching.analysis.runner, slimcaching.analysis.worker;"
                          "print(sorted(m for m in ('pyomo', 'highspy', 'slimcaching.moe2') if m in sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
def test_versions_are_read_once_and_returned_as_copies(monkeypatch):
    from importlib import metadata

    from slimcaching.result import versions

    first = versions()
    monkeypatch.setattr(metadata, "version", lambda pkg: (_ for _ in ()).throw(AssertionError("read again")))
    again = versions()  # cached: package metadata is not read again
    assert again == first and again is not first
    again["numpy"] = "changed"
    assert versions()["numpy"] == first["numpy"]
