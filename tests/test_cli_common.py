"""Every option value is checked before a command runs: one line on stderr, exit code 2, nothing written."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from slimcaching.cli import main
from slimcaching.cli.common import parse_params
from slimcaching.errors import InputError

TINY = str(Path(__file__).resolve().parent / "data" / "tiny.json")


def _run(capsys, argv):
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


BAD = [
    # issue 18 item 9: these gave tracebacks
    (["generate", "--seed", "-1"], r"argument --seed: --seed must be >= 0, got -1"),
    (["generate", "--skew", "nan"], r"--skew must be finite and in \[0, 10\], got 'nan'"),
    (["generate", "--skew", "inf"], r"--skew must be finite and in \[0, 10\], got 'inf'"),
    (["generate", "--top-k", "9", "--experts", "4"], r"^--top-k: must be at most --experts \(4\), got 9$"),
    (["moe2", "generate", "--seed", "1", "--energy-fraction", "inf"], r"--energy-fraction must be > 0 and finite"),
    (["moe2", "generate", "--seed", "1", "--energy-fraction", "1e308"],
     r"^--energy-fraction: 1e\+308 gives an infinite energy budget$"),
    # other ranges
    (["generate", "--seed", str(2**63)], r"--seed must be <= 9223372036854775807"),
    (["generate", "--experts", "70000"], r"--experts must be <= 65536, got 70000"),
    (["generate", "--users", "4096", "--layers", "4096", "--experts", "8"],
     r"^--users: users=4096 x layers=4096 x experts=8 = 134217728 cells exceeds the instance size limit"),
    (["generate", "--specialisation", "1.5"], r"--specialisation must be finite and in \[0, 1\]"),
    (["generate", "--topic-strength", "1e300"], r"--topic-strength must be finite and in \[0, 20\]"),
    (["generate", "--model", "mixtral-8x7b", "--topics", "9"], r"^--topics: must be at most the number of experts"),
    (["generate", "--capacity-fraction", "nan"], r"--capacity-fraction must be > 0 and finite"),
    (["solve", TINY, "--algorithm", "greedy", "--time-limit", "inf"], r"--time-limit must be > 0 and finite"),
    (["solve", TINY, "--algorithm", "greedy", "--seed", "-3"], r"--seed must be >= 0"),
    (["solve", TINY, "--algorithm", "maxconv", "--eps", "1"], r"--eps must be finite and in \(0, 1\)"),
    (["solve", TINY, "--algorithm", "exact", "--mip-gap", "nan"], r"--mip-gap must be finite and in \[0, 1\)"),
    (["solve", TINY, "--algorithm", "greedy", "--param", "time_limit=3"],
     r"^--param: time_limit is an option of its own \(--time-limit\), not a --param$"),
    (["solve", TINY, "--algorithm", "maxconv", "--param", "eps=NaN"], r"^--param: eps must be finite, got 'NaN'$"),
    (["from-trace", TINY, "--model", "mixtral-8x7b", "--layer-base", "-1"], r"--layer-base must be >= 0"),
    (["from-trace", TINY, "--model", "mixtral-8x7b", "--nodes", "0"], r"--nodes must be >= 1"),
    (["bench", TINY, "--seeds", "1,-2"], r"--seeds must be comma-separated integers in 0\.\.9223372036854775807"),
    (["worst-case", "--algorithm", "greedy", "--top-k", "5"], r"^--top-k: must be at most --max-experts \(4\), got 5$"),
    (["worst-case", "--algorithm", "greedy", "--max-experts", "17"], r"--max-experts must be <= 16"),
    (["moe2", "generate", "--seed", "1", "--orin-fraction", "2"], r"--orin-fraction must be finite and in \[0, 1\]"),
    (["moe2", "generate", "--seed", "1", "--experts", "16", "--categories", "2000"],
     r"^--categories: categories x 2\^experts = 131072000 quality entries exceeds the limit"),
    (["moe2", "solve", TINY, "--algorithm", "dmo", "--seed", "-1"], r"--seed must be >= 0"),
    (["generate", "--model", "mixtral-8x7b", "--capacity", "9" * 25],
     r"--capacity must be at most 9007199254740992 size units or 2\^63 bytes"),
    (["from-trace", TINY, "--model", "mixtral-8x7b", "--device-capacity", "99999999999999999GiB"],
     r"--device-capacity must be at most 9007199254740992 size units or 2\^63 bytes"),
    (["bench", TINY, "--db", TINY], r"^--db: '.*tiny.json' is an input of this command; refusing to overwrite it$"),
]


@pytest.mark.parametrize("argv,rule", BAD)
def test_bad_option_is_one_line_exit_2(tmp_path, capsys, argv, rule):
    out = tmp_path / "out.json"
    writes = argv[0] == "generate" or argv[:2] == ["moe2", "generate"]
    rc, stdout, err = _run(capsys, argv + (["-o", str(out)] if writes else []))
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(rule, err.strip()), err
    assert stdout == "" and not out.exists()


def test_defaults_and_edges_are_accepted(tmp_path, capsys):
    for argv in (["generate", "--seed", "0", "--skew", "0", "--specialisation", "1", "--experts", "3", "--top-k", "3"],
                 ["generate", "--seed", str(2**63 - 1), "--layers", "1", "--experts", "2", "--top-k", "2"],
                 ["moe2", "generate", "--seed", "3", "--orin-fraction", "0", "--energy-fraction", "5"]):
        rc, _, err = _run(capsys, argv + ["-o", str(tmp_path / "x.json")])
        assert rc == 0, err


def test_parse_params():
    assert parse_params(["eps=0.1", "order=fastest", "layer-solver=exact", "flag=true"]) == {
        "eps": 0.1, "order": "fastest", "layer_solver": "exact", "flag": True}
    with pytest.raises(InputError, match=r"--param: expected key=value"):
        parse_params(["eps"])
    with pytest.raises(InputError, match=r"--param: eps must be finite, got '1e400'"):
        parse_params(["eps=1e400"])
    with pytest.raises(InputError, match=r"--param: seed is an option of its own \(--seed\)"):
        parse_params(["seed=1"])


def test_docs_list_every_checked_option_and_exit_code():
    """docs/model.md section 6 names every option whose value is checked, per command, and every exit code."""
    import argparse

    from slimcaching.cli.main import build_parser

    doc = (Path(__file__).resolve().parents[1] / "docs" / "model.md").read_text()
    section = doc[doc.index("## 6. Exit codes"):]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("command", "---"):
            for cmd in cells[0].split(", "):
                rows[cmd] = rows.get(cmd, "") + " " + cells[1]
    missing = []

    def walk(parser, prefix):
        for a in parser._actions:
            if isinstance(a, argparse._SubParsersAction):
                for name, sp in a.choices.items():
                    walk(sp, prefix + [name])
            elif prefix and a.option_strings and (a.type is not None or a.choices is not None):
                opt = max(a.option_strings, key=len)
                if f"`{opt}" not in rows.get(" ".join(prefix), ""):
                    missing.append(f"{' '.join(prefix)} {opt}")

    walk(build_parser(), [])
    assert missing == [], missing
    for code in (0, 1, 2, 130, 143):
        assert re.search(rf"^\| {code} \|", section, re.M)
