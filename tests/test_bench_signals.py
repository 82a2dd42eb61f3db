"""A running ``slimcaching bench`` stopped from outside: SIGINT, SIGTERM, SIGKILL, a full disk.

Each test starts the real command in a child process, waits until it has
stored a few rows, then stops it and checks what a user relies on: the exit
code, one line on stderr, every stored row kept, no worker process left
behind, and a rerun that completes the sweep with each run exactly once.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from slimcaching.algorithms import REGISTRY
from slimcaching.analysis.runner import plan, resolve_inputs, run_sweep
from slimcaching.analysis.store import ResultStore
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import write_instance

TESTS = Path(__file__).resolve().parent
SEEDS = "0,1,2,3,4,5,6,7,8,9"
ALG = "sleepy[s=0.25]"
#: the bench command with the planted `sleepy` algorithm registered (tests/planted.py)
LAUNCH = ("import sys; from slimcaching.algorithms import REGISTRY; REGISTRY['sleepy'] = 'planted:sleepy'; "
          "REGISTRY['hang'] = 'planted:hang'; from slimcaching.cli import main; sys.argv[0] = 'slimcaching'; "
          "raise SystemExit(main())")  # as the installed script calls it


def _suite(folder: Path, n: int = 3) -> Path:
    for s in range(n):
        write_instance(random_instance(layers=2, experts=3, top_k=2, nodes=2, users=2, seed=s,
                                       capacity_fraction=0.3), folder / f"inst-{s}.json")
    return folder


def _start(suite: Path, db: Path, *extra: str, preexec=None, algs: str = ALG, seeds: str = SEEDS
           ) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", LAUNCH, "bench", str(suite), "--algorithms", algs, "--seeds", seeds,
           "--db", str(db), "--no-progress", "--quiet", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=preexec)


def _stored(db: Path) -> int:
    try:
        with ResultStore(db, readonly=True) as st:
            return st.count()
    except Exception:  # not created yet
        return 0


def _wait_for_rows(proc: subprocess.Popen, db: Path, n: int, workers: int, timeout: float = 120) -> list:
    """Wait until ``n`` rows are stored and ``workers`` worker processes run; their processes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        kids = psutil.Process(proc.pid).children(recursive=True)
        if _stored(db) >= n and len(kids) >= workers:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"bench did not store {n} rows with {workers} workers in {timeout} s")


def _gone(procs: list, timeout: float = 5.0) -> list:
    """The processes still alive (zombies count as gone) after waiting up to ``timeout`` s."""
    deadline = time.monotonic() + timeout
    alive = procs
    while time.monotonic() < deadline:
        alive = []
        for p in procs:
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return []
        time.sleep(0.05)
    return alive


def _resume_exactly_once(suite: Path, db: Path, monkeypatch, algs: str = ALG, seeds=range(10)) -> None:
    """A rerun completes the sweep: every planned run exactly once, none run twice."""
    monkeypatch.setitem(REGISTRY, "sleepy", "planted:sleepy")
    monkeypatch.setitem(REGISTRY, "hang", "planted:hang")
    monkeypatch.syspath_prepend(str(TESTS))
    before = _stored(db)
    s = run_sweep([suite], algs, db=db, seeds=seeds, progress=False, jobs=2, time_limit=0.1)
    tasks = plan(resolve_inputs([suite]), algs, seeds=seeds).tasks
    with ResultStore(db, readonly=True) as st:
        keys = sorted(r["key"] for r in st.rows())
    assert keys == sorted(t.key for t in tasks)
    assert s.skipped == before and s.ran == len(tasks) - before


# make test runs Ctrl-C in this process's runs and SIGTERM with worker processes; make test-slow the other two
@pytest.mark.parametrize("sig, code, jobs", [
    (signal.SIGINT, 130, "1"), (signal.SIGTERM, 143, "2"),
    pytest.param(signal.SIGTERM, 143, "1", marks=pytest.mark.slow),
    pytest.param(signal.SIGINT, 130, "2", marks=pytest.mark.slow),
])
def test_signal_stops_bench_within_2s_keeps_rows_one_line(tmp_path, monkeypatch, sig, code, jobs):
    suite, db = _suite(tmp_path / "s"), tmp_path / "r.sqlite"
    proc = _start(suite, db, "--jobs", jobs)
    kids = _wait_for_rows(proc, db, 3, workers=int(jobs) if jobs != "1" else 0)
    t0 = time.monotonic()
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=10)
    finally:
        proc.kill()
    took = time.monotonic() - t0
    err = proc.stderr.read()
    name = "SIGINT" if sig == signal.SIGINT else "SIGTERM"
    assert rc == code and took < 2.0, (rc, took, err)
    assert err.count("\n") == 1 and f"bench: interrupted ({name})" in err and "the same command resumes" in err, err
    assert not _gone(kids)
    stored = _stored(db)
    said = int(err.split("; ")[1].split()[0])  # "<n> run(s) stored in <db> by this sweep"
    assert stored >= 3 and said in (stored, stored - 1)  # (a signal between commit and count: one less)
    _resume_exactly_once(suite, db, monkeypatch)


def _busy_workers(proc: subprocess.Popen, db: Path, timeout: float = 120) -> list:
    """Wait until the first two runs are stored and both workers are inside a hanging run."""
    kids = _wait_for_rows(proc, db, 2, workers=2, timeout=timeout)
    time.sleep(1.0)  # each worker has moved on from its instance's quick run to its hanging one
    assert _stored(db) == 2
    return kids


HANGS = "sleepy[s=0.05],hang"  # per instance a quick run, then one that never returns


def _kill_busy_bench(tmp_path, sig, *executor: str) -> Path:
    """Start bench with two workers stuck in runs that never return, stop it with ``sig``:
    its exit code, and no worker left within a bounded wait.  Returns the suite."""
    suite, db = _suite(tmp_path / "s"), tmp_path / "r.sqlite"
    proc = _start(suite, db, *executor, "--jobs", "2", "--time-limit", "600", algs=HANGS, seeds="0")
    kids = _busy_workers(proc, db)
    assert len(kids) >= 2 and all("slimcaching.analysis.worker" in " ".join(k.cmdline()) for k in kids)
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=10)
    finally:
        proc.kill()
    assert rc == (143 if sig == signal.SIGTERM else -9)
    assert not _gone(kids), "worker processes outlived bench"
    return suite


@pytest.mark.parametrize("sig", [signal.SIGKILL, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_no_worker_outlives_the_bench_process(tmp_path, monkeypatch, sig):
    """Workers busy in a run that never returns die with bench, however bench dies."""
    suite = _kill_busy_bench(tmp_path, sig)
    _resume_exactly_once(suite, tmp_path / "r.sqlite", monkeypatch, algs=HANGS, seeds=[0])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_worker_outlives_a_dask_bench(tmp_path, sig):
    pytest.importorskip("distributed")
    _kill_busy_bench(tmp_path, sig, "--executor", "dask")


def _fsize_limit(nbytes: int):
    def set_limit():
        import resource

        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return set_limit


def test_full_disk_is_one_line_and_the_sweep_resumes(tmp_path, monkeypatch):
    """Writes past a file-size limit fail as on a full disk: one line, exit 1, stored rows intact."""
    suite, db = _suite(tmp_path / "s"), tmp_path / "r.sqlite"
    monkeypatch.setitem(REGISTRY, "sleepy", "planted:sleepy")
    monkeypatch.syspath_prepend(str(TESTS))
    run_sweep([suite], ALG, db=db, seeds=[0], progress=False)  # 3 rows, the store exists
    size = db.stat().st_size
    proc = _start(suite, db, "--jobs", "1", preexec=_fsize_limit(size + 20_000))
    rc = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert rc == 1, err
    assert err.count("\n") == 1 and str(db) in err and "the same command resumes" in err, err
    assert "Traceback" not in err and not list(tmp_path.glob("*.tmp"))
    stored = _stored(db)
    assert 3 <= stored < 30
    _resume_exactly_once(suite, db, monkeypatch)


@pytest.mark.slow
def test_exact_on_a_dask_cluster_of_processes(tmp_path):
    """bench --executor dask with exact runs on a LocalCluster of worker processes, 2 threads each."""
    distributed = pytest.importorskip("distributed")
    suite, db = _suite(tmp_path / "s", 4), tmp_path / "r.sqlite"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        s = run_sweep([suite], "exact,brute-force,successive", db=db, seeds=[0, 1], time_limit=20,
                      executor="dask", client=client, progress=False)
    assert s.ran == 4 * 3 * 2 and s.errors == 0 and s.timeouts == 0
    tasks = plan(resolve_inputs([suite]), "exact,brute-force,successive", seeds=[0, 1]).tasks
    with ResultStore(db, readonly=True) as st:
        rows = {r["key"]: r for r in st.rows()}
    assert sorted(rows) == sorted(t.key for t in tasks)
    for k, r in rows.items():
        if r["algorithm"] == "exact":
            bf = rows[k.replace("|exact|", "|brute-force|")]
            assert r["status"] == "optimal" and r["latency"] == pytest.approx(bf["latency"], rel=1e-6)
            assert r["latency"] <= rows[k.replace("|exact|", "|successive|")]["latency"] * (1 + 1e-9)
