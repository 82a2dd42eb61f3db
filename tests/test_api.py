"""The public API stays: every name, algorithm, command and option of ``tests/data/public_api.json``.

The snapshot was taken before the code was reorganised into one folder per
family; new names may be added, none may disappear.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import slimcaching
from slimcaching.algorithms import REGISTRY, get_algorithm
from slimcaching.cli import build_parser

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "public_api.json").read_text())


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, dict]:
    out = {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sp in a.choices.items():
                out.update(_commands(sp, (prefix + " " + name).strip()))
    out[prefix or "<top>"] = {
        "options": sorted(s for a in parser._actions for s in a.option_strings),
        "positionals": [a.dest for a in parser._actions
                        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)],
    }
    return out


def test_top_level_names():
    assert set(SNAPSHOT["all"]) <= set(slimcaching.__all__)
    for name in slimcaching.__all__:
        assert getattr(slimcaching, name) is not None
    assert callable(slimcaching.read_instance) and callable(slimcaching.solve) and callable(slimcaching.evaluate)


def test_registry_names_resolve():
    assert list(REGISTRY)[:len(SNAPSHOT["registry"])] == SNAPSHOT["registry"]
    for name in REGISTRY:
        assert callable(get_algorithm(name))


def test_every_command_and_option_stays():
    now = _commands(build_parser())
    for cmd, spec in SNAPSHOT["cli"].items():
        assert cmd in now, f"command {cmd!r} disappeared"
        missing = set(spec["options"]) - set(now[cmd]["options"])
        assert not missing, f"{cmd}: options {sorted(missing)} disappeared"
        assert now[cmd]["positionals"] == spec["positionals"], cmd


def test_version_names_the_installed_package_and_back_ends(capsys):
    """``slimcaching --version`` prints the installed distribution's version (one source: ``__version__``)
    and the back-end versions that results record, then exits 0."""
    from importlib import metadata

    import numpy
    import pytest

    from slimcaching.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"slimcaching {slimcaching.__version__} (Python ")
    assert slimcaching.__version__ == metadata.version("slimcaching")
    assert f"numpy {numpy.__version__}" in line and f"highspy {metadata.version('highspy')}" in line
