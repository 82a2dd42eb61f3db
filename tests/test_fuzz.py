"""Fuzzing every command that reads a file: mutated inputs never give a traceback.

Valid files of each kind (instances, placements, MoE² instances and
selections, router traces in each layout, results stores) are mutated by
byte flips, truncation, a repeated key, a value of another type, a huge or
non-finite number, or deep nesting, and fed to the commands that read them,
in process through :func:`slimcaching.cli.main`.  The property, for every
input: the exit code is 0, 1 or 2, no exception escapes, and stderr holds at
most one line.

``make test`` runs a modest number of examples per (file kind, command) with
a fixed derandomised sequence; ``make test-slow`` runs many more, random.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from slimcaching.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


# ------------------------------------------------------------------ valid seed files
def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, tuple[str, bytes]]:
    """File kind -> (file name, valid content)."""
    from slimcaching.moe2.generator import generate_moe2
    from slimcaching.moe2.instance import selection_to_dict

    d = tmp_path_factory.mktemp("seeds")
    moe2 = generate_moe2(1, experts=3, categories=2)
    db = d / "results.sqlite"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        assert main(["bench", str(DATA / "tiny.json"), "--algorithms", "cloud,greedy", "--exact", "--time-limit",
                     "20", "--db", str(db), "--jobs", "1", "--no-progress", "--quiet"]) == 0
    rows = ["user,token,layer,expert"] + [f"u{u},{t},{l},{e}" for u in range(2) for t in range(6) for l in range(2)
                                          for e in ((t + l) % 8, (t + 3 * l + 1 + u) % 8)]
    jsonl = "\n".join(json.dumps({"user": f"u{t % 2}", "layer_idx": l, "token_idx": t,
                                  "selected_ids": [(t + l) % 8, (t + l + 3) % 8]})
                      for t in range(8) for l in range(2))
    routed = np.array([[[(t + l) % 8, (t + 2 * l + 5) % 8] for l in range(2)] for t in range(10)], dtype=np.int64)
    counts = np.random.default_rng(0).integers(0, 50, size=(3, 2, 8))
    return {
        "instance": ("inst.json", (DATA / "tiny.json").read_bytes()),
        "placement": ("placement.json", (DATA / "tiny.optimal.json").read_bytes()),
        "moe2": ("moe2.json", json.dumps(moe2.to_dict()).encode()),
        "selection": ("sel.json", json.dumps(selection_to_dict(moe2, [1, 6])).encode()),
        "trace-csv": ("trace.csv", ("\n".join(rows) + "\n").encode()),
        "trace-jsonl": ("trace.jsonl", (jsonl + "\n").encode()),
        "trace-npy": ("trace.npy", _npy_bytes(routed)),
        "trace-fiddler": ("pop.json", json.dumps({"total_input_tokens": 100,
                                                  "expert_popularity": counts.sum(axis=0).tolist()}).encode()),
        "trace-counts": ("counts.npy", _npy_bytes(counts)),
        "store": ("results.sqlite", db.read_bytes()),
    }


# ------------------------------------------------------------------ the commands reading each kind
TINY, PLACEMENT, MOE2, SELECTION = "{tiny}", "{placement}", "{moe2}", "{selection}"
COMMANDS: list[tuple[str, list[str]]] = [
    ("instance", ["validate", "{f}"]),
    ("instance", ["solve", "{f}", "--algorithm", "greedy", "-o", "{out}/p.json"]),
    ("instance", ["evaluate", "{f}", PLACEMENT]),
    ("instance", ["export", "{f}", "--formulation", "level", "--format", "lp", "-o", "{out}/m.lp"]),
    ("placement", ["evaluate", TINY, "{f}"]),
    ("moe2", ["moe2", "solve", "{f}", "--algorithm", "greedy"]),
    ("moe2", ["moe2", "evaluate", "{f}", SELECTION]),
    ("selection", ["moe2", "evaluate", MOE2, "{f}"]),
    ("trace-csv", ["from-trace", "{f}", "--model", "mixtral-8x7b", "-o", "{out}/i.json"]),
    ("trace-jsonl", ["from-trace", "{f}", "--model", "mixtral-8x7b", "-o", "{out}/i.json"]),
    ("trace-npy", ["from-trace", "{f}", "--model", "mixtral-8x7b", "-o", "{out}/i.json"]),
    ("trace-fiddler", ["from-trace", "{f}", "--model", "mixtral-8x7b", "--format", "fiddler", "-o", "{out}/i.json"]),
    ("trace-counts", ["from-trace", "{f}", "--model", "mixtral-8x7b", "--format", "counts-npy",
                      "-o", "{out}/i.json"]),
    ("store", ["report", "{f}"]),
    ("store", ["check-guarantees", "{f}", "--out", "{out}/cex"]),
]
JSON_KINDS = {"instance", "placement", "moe2", "selection", "trace-fiddler"}


# ------------------------------------------------------------------ mutations
HUGE = ["1e400", "-1e400", str(10**30), str(2**63), str(2**64 + 1), "1" + "0" * 400, "9" * 5000, "-1", "0",
        "1e-320", "0.5", "NaN", "Infinity", "-0"]
OTHER = ["null", "true", '"x"', '""', "[]", "{}", '"\\r\\u001b[2J"', '"\\ud800"', '"١"', "[[[[[]]]]]",
         '{"experts": [0], "p": 1}']


def _json_spans(text: str) -> list[tuple[int, int]]:
    """Spans of number, string, true/false/null tokens and brackets: places a value or key can be swapped."""
    return [m.span() for m in re.finditer(r'-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|"(?:[^"\\]|\\.)*"|true|false|null',
                                          text)]


@st.composite
def mutated(draw, kind: str, content: bytes) -> bytes:
    ops = ["flip", "truncate", "insert"]
    if kind in JSON_KINDS:
        ops += ["huge", "swap", "dupkey", "nest"]
    op = draw(st.sampled_from(ops))
    data = bytearray(content)
    if op == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if op == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if op == "insert":
        i = draw(st.integers(0, len(data)))
        return bytes(data[:i]) + draw(st.binary(min_size=1, max_size=16)) + bytes(data[i:])
    text = content.decode("utf-8")
    spans = _json_spans(text)
    if op in ("huge", "swap"):
        a, b = draw(st.sampled_from(spans))
        new = draw(st.sampled_from(HUGE if op == "huge" else OTHER + HUGE[:3]))
        return (text[:a] + new + text[b:]).encode("utf-8")
    if op == "dupkey":
        keys = [m for m in re.finditer(r'"([^"\\]*)"\s*:', text)]
        m = draw(st.sampled_from(keys))
        value = draw(st.sampled_from(HUGE[:4] + OTHER[:6]))
        return (text[: m.start()] + f'"{m.group(1)}": {value}, ' + text[m.start():]).encode("utf-8")
    # nest: wrap one value in many lists
    a, b = draw(st.sampled_from(spans))
    depth = draw(st.sampled_from([2, 50, 5000, 100_000]))
    return (text[:a] + "[" * depth + text[a:b] + "]" * depth + text[b:]).encode("utf-8")


# ------------------------------------------------------------------ the property
def _check(seeds, tmp: Path, kind: str, argv: list[str], data: bytes) -> None:
    name, _ = seeds[kind]
    f = tmp / name
    for side in ("-wal", "-shm", "-journal"):  # SQLite files of the previous example
        Path(str(f) + side).unlink(missing_ok=True)
    f.write_bytes(data)
    out = tmp / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    fixed = {k: tmp / "fixed" / seeds[k][0] for k in ("placement", "moe2", "selection")}
    args = [a.format(f=f, out=out, tiny=DATA / "tiny.json", placement=fixed["placement"], moe2=fixed["moe2"],
                     selection=fixed["selection"]) for a in argv]
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            rc = main(args)
        except SystemExit as exc:  # argparse usage errors exit through SystemExit
            rc = exc.code
    text = err.getvalue()
    assert rc in (0, 1, 2), f"exit code {rc} for {kind} {argv}: {text[-2000:]}"
    assert text.count("\n") <= 1, f"more than one line on stderr for {kind} {argv}:\n{text[-3000:]}"
    assert "Traceback" not in text


def _fuzz(seeds, tmp_path_factory, kind, argv, examples: int, derandomize: bool):
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "fixed").mkdir()
    for k in ("placement", "moe2", "selection"):
        (tmp / "fixed" / seeds[k][0]).write_bytes(seeds[k][1])
    _check(seeds, tmp, kind, argv, seeds[kind][1])  # the unmutated file passes too

    @settings(max_examples=examples, deadline=None, derandomize=derandomize, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=mutated(kind, seeds[kind][1]))
    def run(data):
        _check(seeds, tmp, kind, argv, data)

    run()


@pytest.mark.parametrize("kind,argv", COMMANDS, ids=[f"{k}-{a[0] if a[0] != 'moe2' else 'moe2-' + a[1]}"
                                                     for k, a in COMMANDS])
def test_mutated_inputs_never_give_a_traceback(seeds, tmp_path_factory, kind, argv):
    _fuzz(seeds, tmp_path_factory, kind, argv, examples=int(os.environ.get("SLIMCACHING_FUZZ_EXAMPLES", 25)),
          derandomize=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind,argv", COMMANDS, ids=[f"{k}-{a[0] if a[0] != 'moe2' else 'moe2-' + a[1]}"
                                                     for k, a in COMMANDS])
def test_mutated_inputs_never_give_a_traceback_many(seeds, tmp_path_factory, kind, argv):
    _fuzz(seeds, tmp_path_factory, kind, argv, examples=400, derandomize=False)
