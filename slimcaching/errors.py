"""The one error type for bad input.

Every reader and validator raises :class:`InputError`; the command line turns
it into one line on stderr and exit code 2.  A validator collects *all*
problems first (as ``(json_path, rule)`` pairs) so the user can fix a file in
one pass; the message shows the first and says how many more there are.
"""
from __future__ import annotations

__all__ = ["InputError", "Problem"]

Problem = tuple[str, str]  # (JSON path such as "$.users[1].routing[0][2].p", rule)


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
        path, rule = self.problems[0]
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        where = f"{self.file}: {path}: " if path else f"{self.file}: "
        return (where + rule + tail).replace("\n", " ")
