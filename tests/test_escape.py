"""Table cells from files and stores are escaped: Markdown rows stay rows, LaTeX shows the text literally."""
from __future__ import annotations

import re

import pandas as pd
from hypothesis import given, settings, strategies as st

from slimcaching.analysis.escape import escape_latex, escape_markdown
from slimcaching.analysis.report import format_table

NASTY = "a|b\\|c\nd\r\x1b[31m_{x}^~&%$#<>\\"


def _unescape_latex(s: str) -> str:
    table = {r"\textbackslash{}": "\\", r"\textasciitilde{}": "~", r"\textasciicircum{}": "^",
             r"\textless{}": "<", r"\textgreater{}": ">", r"\textbar{}": "|"}
    out, i = [], 0
    while i < len(s):
        for k, v in table.items():
            if s.startswith(k, i):
                out.append(v)
                i += len(k)
                break
        else:
            if s[i] == "\\" and i + 1 < len(s) and s[i + 1] in "&%$#_{}":
                out.append(s[i + 1])
                i += 2
            else:
                out.append(s[i])
                i += 1
    return "".join(out)


def test_latex_backslash_is_not_escaped_twice():
    assert escape_latex("\\") == r"\textbackslash{}"          # was \textbackslash\{\}
    assert escape_latex("a_b{c}") == r"a\_b\{c\}"
    assert escape_latex("x\ny") == "x y"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \\&%$#_{}~^<>|"))))
def test_latex_escape_is_faithful_and_leaves_no_live_special(text):
    esc = escape_latex(text)
    assert _unescape_latex(esc) == text
    # every special character left is part of an escape: no bare & % $ # _ ^ ~ and balanced braces
    bare = re.sub(r"\\(textbackslash|textasciitilde|textasciicircum|textless|textgreater|textbar)\{\}", "", esc)
    bare = re.sub(r"\\[&%$#_{}]", "", bare)
    assert not set(bare) & set("&%$#_^~{}\\<>|")


def test_markdown_cell_keeps_the_row_intact():
    assert escape_markdown("a|b") == "a\\|b"
    assert escape_markdown("a\\|b") == "a\\\\\\|b"   # an existing escape cannot switch ours off
    assert escape_markdown("x\r\ny") == "x<br>y"
    assert escape_markdown("\x1b[2J") == "\\\\x1b[2J"  # shown as \x1b[2J


def test_report_tables_escape_every_cell():
    t = pd.DataFrame({"algorithm": [NASTY, "greedy"], "runs": [1, 2]})
    md = format_table(t, "markdown")
    lines = md.splitlines()
    assert len(lines) == 4                           # header, rule, two rows: the newline did not split a row
    for line in lines:                               # every row has exactly the two cells
        assert len(re.split(r"(?<!\\)\|", line.replace("\\\\", ""))) == 4
    assert "\x1b" not in md and "\r" not in md
    tex = format_table(t, "latex", caption="50% of a_b")
    row = [ln for ln in tex.splitlines() if ln.endswith(r"1 \\")][0]
    assert row.count(" & ") == 1 and row[: -len(r" & 1 \\")] == escape_latex(NASTY)
    assert _unescape_latex(escape_latex(NASTY)) == NASTY.replace("\n", " ").replace("\r", " ").replace(
        "\x1b", "\\x1b")
    assert "\\caption{50\\% of a\\_b}" in tex
