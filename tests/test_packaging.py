"""The declared dependency bounds are the versions `make test-min` installs, and nothing is capped.

`constraints-min.txt` pins the versions the suite was run with; a lower bound
in `pyproject.toml` that differs from its pin would be a promise nobody tested.
"""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _requirements() -> list[Requirement]:
    p = _project()
    reqs = list(p["dependencies"])
    for extra in p["optional-dependencies"].values():
        reqs.extend(extra)
    return [Requirement(r) for r in reqs]


def _pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints-min.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line)
            assert m, f"constraints-min.txt: {line!r} is not 'name==version'"
            pins[m.group(1).lower()] = Version(m.group(2))
    return pins


def test_every_lower_bound_is_the_pinned_minimum_and_nothing_is_capped():
    pins = _pins()
    for req in _requirements():
        specs = list(req.specifier)
        assert [s.operator for s in specs] == [">="], f"{req}: only one '>=' bound, no upper cap"
        assert req.name.lower() in pins, f"{req.name} has no pin in constraints-min.txt"
        assert Version(specs[0].version) == pins[req.name.lower()], (
            f"{req}: the lower bound differs from the tested pin {pins[req.name.lower()]}")
    declared = {r.name.lower() for r in _requirements()}
    assert set(pins) - declared <= {"dask"}, "a pin for a package that is not declared"


def test_license_is_an_spdx_string_and_the_version_has_one_source():
    import slimcaching

    assert _project()["license"] == "MIT"
    assert "version" in _project()["dynamic"]
    assert metadata.version("slimcaching") == slimcaching.__version__


def test_the_installed_versions_meet_the_declared_bounds():
    for req in _requirements():
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            continue  # an extra that is not installed here
        assert req.specifier.contains(installed, prereleases=True), f"{req.name} {installed} does not meet {req}"
