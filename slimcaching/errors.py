"""The error types of the command line: bad input, and an output that cannot be written.

Every reader and validator raises :class:`InputError`; the command line turns
it into one line on stderr and exit code 2.  A validator collects *all*
problems first (as ``(json_path, rule)`` pairs) so the user can fix a file in
one pass; the message shows the first and says how many more there are.

Writing a file fails with :class:`OutputError` (a read-only or missing
directory, a directory named as the output, a full disk): one line on stderr
and exit code 1.

Every message passes through :func:`escape_control`, so a key or a file name
holding a carriage return or a terminal escape sequence cannot rewrite the
user's terminal.
"""
from __future__ import annotations

__all__ = ["InputError", "OutputError", "Problem", "Terminated", "escape_control"]

Problem = tuple[str, str]  # (JSON path such as "$.users[1].routing[0][2].p", rule)

# C0 controls, DEL and C1 controls: everything a terminal may interpret.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def escape_control(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\r``, ``\\x1b``, ...).

    Examples
    --------
    >>> escape_control("bad\\r\\x1b[31mkey")
    'bad\\\\r\\\\x1b[31mkey'
    """
    return str(text).translate(_CONTROL)


class InputError(ValueError):
    """Malformed input: names the file, the JSON path and the rule broken.

    Parameters
    ----------
    file : str
        The file (or ``"<input>"`` for in-memory data, ``"--option"`` for an
        option value).
    problems : list of (path, rule)
        Every violation found; at least one.
    """

    def __init__(self, file: str, problems: list[Problem] | Problem):
        if isinstance(problems, tuple):
            problems = [problems]
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.file = str(file)
        self.problems = list(problems)
        super().__init__(self.one_line())

    @property
    def path(self) -> str:
        return self.problems[0][0]

    @property
    def rule(self) -> str:
        return self.problems[0][1]

    def one_line(self) -> str:
        """``file: path: rule (and N more problems)``, control characters escaped."""
        path, rule = self.problems[0]
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = f"{self.file}: {path}: " if path else f"{self.file}: "
        return escape_control(where + rule + tail)


class OutputError(OSError):
    """A file could not be written: names the file and the reason (exit code 1).

    Parameters
    ----------
    file : str
        The output path as the user gave it.
    reason : str
        What went wrong, e.g. the operating system's message.
    """

    def __init__(self, file: str, reason: str):
        self.file = str(file)
        self.reason = str(reason)
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``file: cannot write: reason``, control characters escaped."""
        return escape_control(f"{self.file}: cannot write: {self.reason}")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that the same cleanup runs.

    The command line's handler raises it (:mod:`slimcaching.cli.main`); a
    method that keeps its incumbent on Ctrl-C keeps it on SIGTERM too (a job
    scheduler's time limit), and the command exits 143 instead of 130
    (:class:`~slimcaching.solvers.SolveInterrupted` carries the incumbent).
    """
