"""Command-line manners: the solve summary on stderr, compact placement JSON, --version,
every option's help and default, progress bars only on a terminal."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slimcaching.cli import main
from slimcaching.cli.common import HelpFormatter, show_progress
from slimcaching.fileio import dumps_json
from slimcaching.cli.main import build_parser
from slimcaching.instances.generators import random_instance
from slimcaching.instances.io import read_placement, write_instance


@pytest.fixture()
def inst_file(tmp_path):
    inst = random_instance(layers=3, experts=6, top_k=2, nodes=3, users=2, seed=4, capacity_fraction=0.4)
    write_instance(inst, tmp_path / "i.json")
    return tmp_path / "i.json"


def test_solve_prints_a_one_line_summary_to_stderr(inst_file, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["solve", str(inst_file), "--algorithm", "exact", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(out.read_text())
    m = re.fullmatch(r"exact: latency (\S+) s, reduction (\S+) s \((\S+)% of cloud-only\), status (\w+), "
                     r"gap (\S+), time (\S+) s; placement in (.+)", lines[0])
    assert m, lines[0]
    assert float(m.group(1)) == pytest.approx(doc["latency"], rel=1e-5)
    assert float(m.group(2)) == pytest.approx(doc["reduction"], rel=1e-5)
    assert float(m.group(3)) == pytest.approx(100 * doc["reduction"] / doc["empty_latency"], abs=0.06)
    assert m.group(4) == doc["status"] == "optimal" and m.group(7) == str(out)
    # to stdout, the JSON alone; --quiet drops the summary
    assert main(["solve", str(inst_file), "--algorithm", "greedy", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["algorithm"] == "greedy"
    assert main(["solve", str(inst_file), "--algorithm", "greedy"]) == 0
    assert "status heuristic, gap -," in capsys.readouterr().err


def test_placement_json_is_compact_and_reads_back(inst_file, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["solve", str(inst_file), "--algorithm", "best", "-o", str(out), "--quiet"]) == 0
    text = out.read_text()
    doc = json.loads(text)
    pairs = sum(len(v) for v in doc["cache"].values())
    assert pairs > 3
    # no [l, e] pair is spread over several lines: every pair opens and closes on its line
    for line in text.splitlines():
        assert not re.fullmatch(r"\s*-?\d+,?\s*", line), "a bare number on its own line"
        if re.search(r"\[\s*\d+, \d+\]", line):
            assert line.count("[") == line.count("]"), line
    cache_lines = [ln for ln in text.splitlines() if re.search(r"\[\s*\d+, \d+\]", ln)]
    assert len(cache_lines) <= len(doc["cache"])  # one line per node at most
    from slimcaching.instances.io import read_instance

    placement, _ = read_placement(out, read_instance(inst_file))
    assert placement.elements().shape[0] == pairs


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                           | st.text(max_size=5),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=4), children, max_size=4), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_compact_json_round_trips(value):
    assert json.loads(dumps_json(value, compact=True)) == value


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    from importlib.metadata import version

    assert out.startswith(f"slimcaching {version('slimcaching')} (Python ") and "highspy" in out


def _parsers(parser: argparse.ArgumentParser, prefix=()):
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*prefix, name))


def test_every_option_has_help_and_states_its_default():
    for prefix, parser in _parsers(build_parser()):
        assert issubclass(parser.formatter_class, HelpFormatter), prefix
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction, argparse._VersionAction)):
                continue
            where = f"slimcaching {' '.join(prefix)} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where} has no help text"
            if not action.option_strings or action.required or action.nargs == 0:
                continue
            text = formatter._get_help_string(action) % {"default": action.default}
            assert "(default" in text, f"{where}: --help does not state the default"
            if action.default is not None:
                shown = re.search(r"\(default: ([^)]*)\)", text)
                assert shown, where
                if "%(default)s" in formatter._get_help_string(action):
                    assert shown.group(1) == str(action.default), where


def test_help_shows_defaults_in_practice(capsys):
    for argv, expected in ((["generate", "--help"], "(default: 3)"), (["worst-case", "--help"], "most edge nodes"),
                           (["solve", "--help"], "(default: no limit)"), (["demo", "--help"], "(default: 10000)")):
        with pytest.raises(SystemExit):
            main(argv)
        assert expected in capsys.readouterr().out


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class FakeErr:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    ns = argparse.Namespace(no_progress=False)
    monkeypatch.setattr(sys, "stderr", FakeErr(False))
    assert show_progress(ns) is False
    monkeypatch.setattr(sys, "stderr", FakeErr(True))
    assert show_progress(ns) is True
    assert show_progress(argparse.Namespace(no_progress=True)) is False


def test_bench_writes_no_progress_updates_to_a_log(tmp_path):
    inst = random_instance(layers=1, experts=3, top_k=1, nodes=1, users=1, seed=0)
    write_instance(inst, tmp_path / "s" / "a.json")
    r = subprocess.run([sys.executable, "-m", "slimcaching.cli", "bench", str(tmp_path / "s"), "--algorithms",
                        "greedy,cloud", "--db", str(tmp_path / "r.sqlite"), "--jobs", "1", "--quiet"],
                       capture_output=True, text=True, check=True)
    assert "\r" not in r.stderr and "2 runs planned" in r.stderr
