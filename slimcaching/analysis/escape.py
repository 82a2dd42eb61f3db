"""Escaping text for table cells: one place for Markdown and LaTeX.

Cells of report tables carry text that comes from files and the results
store (instance and algorithm names, parameters), so they may hold any
character.  These functions make such text safe inside a table cell without
changing what a reader sees.  Tables built with pandas Styler can pass them
as the formatter (``Styler.format(escape_latex)`` / ``format_index``).
"""
from __future__ import annotations

from ..errors import escape_control

__all__ = ["escape_markdown", "escape_latex"]

_LATEX_TABLE = str.maketrans({
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
})
_SPACES = str.maketrans({"\n": " ", "\r": " ", "\t": " "})


def escape_latex(text: object) -> str:
    """``text`` as it should appear, literally, in LaTeX (text mode, any font encoding).

    Every special character is replaced in one pass, so the replacement of one
    is never escaped again (``\\`` becomes ``\\textbackslash{}``, not
    ``\\textbackslash\\{\\}``).  Line breaks and tabs become spaces (a
    ``tabular`` cell is one line); other control characters are written as
    visible escapes (``\x1b``), themselves escaped.

    Examples
    --------
    >>> escape_latex(r"a_b & 50% \\ {x}")
    'a\\\\_b \\\\& 50\\\\% \\\\textbackslash{} \\\\{x\\\\}'
    """
    flat = str(text).replace("\r\n", " ").translate(_SPACES)
    return escape_control(flat).translate(_LATEX_TABLE)


_MARKDOWN_TABLE = str.maketrans({"\\": "\\\\", "|": "\\|"})


def escape_markdown(text: object) -> str:
    """``text`` safe inside one cell of a Markdown (GitHub) pipe table.

    ``|`` would end the cell and a line break the row: they become ``\\|`` and
    ``<br>``.  A backslash is doubled, so text that already holds ``\\|``
    cannot turn the escape off.  Other control characters are written as
    visible escapes.

    Examples
    --------
    >>> escape_markdown("a|b\\nc")
    'a\\\\|b<br>c'
    """
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "<br>".join(escape_control(line).translate(_MARKDOWN_TABLE) for line in lines)
