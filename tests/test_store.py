"""The results store: keys by content, one row per key, JSON round trips, WAL."""
from __future__ import annotations

import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.analysis.store import COLUMNS, ResultStore, canonical_params, run_key


def _row(**kw):
    base = {"instance_hash": "abc", "algorithm": "greedy", "params": {"b": 2, "a": 1}, "seed": 0,
            "family": "caching", "status": "heuristic", "gain": 0.5, "placement": [[0, 1, 2]],
            "info": {"passes": 3}, "feasible": True}
    base.update(kw)
    return base


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=4), st.integers() | st.floats(allow_nan=False) | st.text(),
                       max_size=5))
def test_canonical_params_ignores_insertion_order(d):
    rev = dict(reversed(list(d.items())))
    assert canonical_params(d) == canonical_params(rev)
    assert run_key("h", "a", d, 1) == run_key("h", "a", rev, 1)


def test_key_distinguishes_every_component():
    keys = {run_key("h", "a", {}, 0), run_key("g", "a", {}, 0), run_key("h", "b", {}, 0),
            run_key("h", "a", {"x": 1}, 0), run_key("h", "a", {}, 1), run_key("h", "a", {}, None)}
    assert len(keys) == 6


def test_put_is_idempotent_per_key_and_round_trips(tmp_path):
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as s:
        s.put(_row())
        s.put(_row(gain=0.75))  # same key: replaced, not duplicated
        s.put(_row(seed=1))
        assert s.count() == 2
        rows = {r["seed"]: r for r in s.rows()}
    assert rows[0]["gain"] == 0.75
    assert rows[0]["params"] == '{"a":1,"b":2}'
    assert rows[0]["params_dict"] == {"a": 1, "b": 2}
    assert rows[0]["placement"] == [[0, 1, 2]] and rows[0]["info"] == {"passes": 3}
    assert rows[0]["feasible"] == 1
    with sqlite3.connect(db) as con:
        assert [r[1] for r in con.execute("PRAGMA table_info(runs)")] == list(COLUMNS)


def test_write_ahead_log_while_open_single_file_after(tmp_path):
    db = tmp_path / "r.sqlite"
    with ResultStore(db) as s:
        s.put(_row())
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        with ResultStore(db) as s2:  # a second writer (a concurrent sweep) sees the first one's rows
            assert s2.count() == 1
            s2.put(_row(seed=5))
        assert s.count() == 2  # ... and the first writer sees the second's
        con.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "delete"
    con.close()


def test_nonfinite_values_are_stored_as_null(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        s.put(_row(gain=math.inf, bound=math.nan))
        (r,) = list(s.rows())
    assert r["gain"] is None and r["bound"] is None


def test_error_rows_are_not_done(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        s.put(_row(status="error", message="boom"))
        s.put(_row(algorithm="cloud"))
        assert s.keys() == {run_key("abc", "cloud", {"a": 1, "b": 2}, 0)}
        assert len(s.keys(include_errors=True)) == 2


def test_frame_has_every_column(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as s:
        s.put(_row())
        df = s.frame()
    assert set(COLUMNS) <= set(df.columns) and len(df) == 1


def test_missing_database_is_an_input_error(tmp_path):
    from slimcaching.analysis.report import load_frame
    from slimcaching.errors import InputError

    with pytest.raises(InputError, match="no such results database"):
        load_frame(tmp_path / "nope.sqlite")


# ------------------------------------------------------------------ reading never writes
def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _stores(tmp_path):
    """Files `report`, `figures` and `check-guarantees` must refuse, with the message each gets."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "text.sqlite").write_text("greedy,0.5\n" * 50)
    (bad / "empty.sqlite").write_bytes(b"")
    con = sqlite3.connect(bad / "foreign.sqlite")
    con.execute("CREATE TABLE papers (title TEXT)")
    con.commit()
    con.close()
    con = sqlite3.connect(bad / "other-runs.sqlite")
    con.execute("CREATE TABLE runs (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    with ResultStore(bad / "corrupt.sqlite") as s:
        for seed in range(200):
            s.put(_row(seed=seed, info={"pad": "x" * 200}))
    data = bytearray((bad / "corrupt.sqlite").read_bytes())
    data[4096:len(data)] = b"\xff" * (len(data) - 4096)  # every page after the first overwritten
    (bad / "corrupt.sqlite").write_bytes(bytes(data))
    return bad, {
        "missing.sqlite": "no such results database",
        "text.sqlite": "not a SQLite file",
        "empty.sqlite": "has no 'runs' table",
        "foreign.sqlite": "holds other tables (papers)",
        "other-runs.sqlite": "table 'runs' lacks column(s) key",
        "corrupt.sqlite": "malformed",
    }


@pytest.mark.parametrize("command", ["report", "figures", "check-guarantees"])
def test_reading_commands_refuse_what_is_not_a_store_in_one_line(tmp_path, capsys, command):
    from slimcaching.cli import main

    bad, expected = _stores(tmp_path)
    before = _snapshot(bad)
    for name, msg in expected.items():
        extra = ["--out", str(tmp_path / "out")] if command != "report" else []
        assert main([command, str(bad / name), *extra]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and str(bad / name) in err, (name, err)
    assert _snapshot(bad) == before  # nothing created, converted or written


def test_bench_refuses_a_foreign_database_and_leaves_it_alone(tmp_path, capsys):
    from slimcaching.cli import main

    bad, expected = _stores(tmp_path)
    con = sqlite3.connect(bad / "views.sqlite")  # no table at all: still someone else's database
    con.execute("CREATE VIEW answer AS SELECT 42")
    con.commit()
    con.close()
    expected.update({"corrupt.sqlite": "damaged file (SQLite integrity check: ",
                     "views.sqlite": "holds other objects (view answer)"})
    del expected["missing.sqlite"], expected["empty.sqlite"]  # both become new stores
    before = _snapshot(bad)
    for name, msg in expected.items():
        assert main(["bench", "tiny", "--algorithms", "cloud", "--db", str(bad / name), "--no-progress",
                     "--jobs", "1", "--limit", "1"]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err and str(bad / name) in err, (name, err)
    assert _snapshot(bad) == before  # not switched to WAL, no table added, no -wal / -journal left


def test_report_reads_a_store_without_changing_it(tmp_path):
    from slimcaching.analysis.report import report

    db = tmp_path / "r.sqlite"
    with ResultStore(db) as s:
        s.put(_row())
        s.put(_row(algorithm="exact", status="optimal", gain=1.0))
    before = _snapshot(tmp_path)
    assert "greedy" in report(str(db))
    assert _snapshot(tmp_path) == before
    # also while a sweep holds it open in write-ahead-log mode
    with ResultStore(db) as s:
        s.put(_row(seed=3))
        assert "greedy" in report(str(db))
        with ResultStore(db, readonly=True) as ro:
            assert ro.count() == 3


def _read_only_folder(folder):
    """Make ``folder`` read-only for this process: a read-only tmpfs as root, permissions otherwise."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0:
        for p in folder.iterdir():
            p.chmod(0o444)
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    keep = folder.with_name(folder.name + "-copy")
    shutil.copytree(folder, keep)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("running as root without permission to mount a read-only file system")
    for p in keep.iterdir():
        shutil.copy2(p, folder / p.name)
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
    return lambda: subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("left_by", ["finished sweep", "killed sweep"])
def test_report_reads_a_read_only_store(tmp_path, capsys, left_by):
    from slimcaching.cli import main

    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "r.sqlite"
    s = ResultStore(db)
    s.put(_row())
    s.put(_row(algorithm="exact", status="optimal", gain=1.0))
    if left_by == "killed sweep":  # the -wal and -shm files stay, as after SIGKILL
        con = sqlite3.connect(db)
        con.execute("PRAGMA wal_autocheckpoint=0")
        con.close()
        s._con.execute("PRAGMA wal_autocheckpoint=0")
        s.put(_row(seed=9))
        import shutil

        snap = tmp_path / "snap"
        snap.mkdir()
        for p in folder.iterdir():
            shutil.copy2(p, snap / p.name)
        s._con.close()
        for p in snap.iterdir():
            shutil.copy2(p, folder / p.name)
    else:
        s.close()
    undo = _read_only_folder(folder)
    try:
        before = _snapshot(folder)
        with pytest.raises(Exception):
            (folder / "probe").write_text("x")  # the folder really is read-only
        assert main(["report", str(db), "--format", "csv"]) == 0
        out = capsys.readouterr().out
        assert "greedy" in out and "exact" in out
        with ResultStore(db, readonly=True) as st:  # the rows still in the write-ahead log are read too
            assert st.count() == (3 if left_by == "killed sweep" else 2)
        assert _snapshot(folder) == before
        assert main(["bench", "tiny", "--algorithms", "cloud", "--db", str(db), "--no-progress", "--jobs", "1",
                     "--limit", "1"]) == 1  # writing is an OS error: one line, exit 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot" in err and str(db) in err
    finally:
        undo()


# ------------------------------------------------------------------ damaged stores, fuzzed
@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    """A store of 60 rows over several pages, and a one-instance suite for ``bench``."""
    import shutil
    from pathlib import Path

    d = tmp_path_factory.mktemp("fuzz")
    with ResultStore(d / "base.sqlite") as s:
        for seed in range(60):
            s.put(_row(seed=seed, info={"pad": "x" * 100}))
    (d / "suite").mkdir()
    shutil.copy(Path(__file__).resolve().parents[1] / "instances" / "tiny" / "tiny-000.json", d / "suite")
    return d


@settings(max_examples=20, deadline=None,
          suppress_health_check=[__import__("hypothesis").HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=6),
       cut=st.none() | st.integers(0, 2**20))
def test_a_damaged_store_is_one_line_and_never_changed_by_a_refusal(fuzz_base, capsys, edits, cut):
    """Bytes of a store overwritten or cut off: ``report`` and ``bench`` exit 0, 1 or 2 with no
    traceback and at most one line; ``report`` never changes the file, nor does a ``bench`` that refuses it."""
    from slimcaching.cli import main

    data = bytearray((fuzz_base / "base.sqlite").read_bytes())
    for at, value in edits:
        data[at % len(data)] = value
    if cut is not None:
        data = data[:cut % len(data)]
    db = fuzz_base / "damaged.sqlite"
    for leftover in fuzz_base.glob("damaged.sqlite*"):
        leftover.unlink()
    db.write_bytes(bytes(data))
    capsys.readouterr()
    rc = main(["report", str(db), "--format", "csv"])
    err = capsys.readouterr().err
    assert rc in (0, 2) and "Traceback" not in err and err.count("\n") <= 1, (rc, err)
    assert db.read_bytes() == data and sorted(p.name for p in fuzz_base.glob("damaged.sqlite*")) == [db.name]
    rc = main(["bench", str(fuzz_base / "suite"), "--algorithms", "cloud", "--db", str(db), "--no-progress",
               "--quiet", "--jobs", "1", "--limit", "1"])
    err = capsys.readouterr().err
    assert rc in (0, 1, 2) and "Traceback" not in err, (rc, err)
    if rc:
        assert err.count("\n") == 1 and str(db) in err, err
    if rc == 2:
        assert db.read_bytes() == data, err
    if rc == 0:  # a sound SQLite file (a row's content may be damaged), with the run it stored
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            assert con.execute("PRAGMA integrity_check(1)").fetchall() == [("ok",)]
            assert con.execute("SELECT COUNT(*) FROM runs WHERE algorithm = 'cloud'").fetchone() == (1,)
        finally:
            con.close()
