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
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert [r[1] for r in con.execute("PRAGMA table_info(runs)")] == list(COLUMNS)


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
