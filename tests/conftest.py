from __future__ import annotations

import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def worked_example() -> Path:
    """The worked example of docs/model.md section 5 (``tests/data``)."""
    return ROOT / "tests" / "data"


@pytest.fixture
def tamper_solver(monkeypatch):
    """``tamper_solver(module, edit, times=99)``: the first ``times`` solver reports that
    ``module.start_solve`` delivers are changed by ``edit(report)`` (a planted solver failure).
    Returns the list of the options each solve ran with."""
    def install(module, edit, times: int = 99) -> list[dict]:
        real = module.start_solve
        calls: list[dict] = []

        class Tampered:
            def __init__(self, pending):
                self.pending = pending

            def __getattr__(self, name):
                return getattr(self.pending, name)

            def wait(self):
                rep = self.pending.wait()
                calls.append(rep.options)
                if len(calls) <= times:
                    edit(rep)
                return rep

        monkeypatch.setattr(module, "start_solve", lambda build, **kw: Tampered(real(build, **kw)))
        return calls

    return install


@pytest.fixture
def node_sets(monkeypatch):
    """Every top-2 layer tabulated by the node-set scan of the count tables (dominated vectors dropped):
    the mask scan's limit set to nothing."""
    from slimcaching.formulations import count_tables

    monkeypatch.setattr(count_tables, "TABLE_WORK", 0)


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_deliverable():
    """The Ctrl-C tests need SIGINT handled as in a terminal.  A suite started in the background
    (``make test &``, ``nohup``) inherits SIGINT ignored, and so would every command it starts,
    since an ignored signal stays ignored across exec: install Python's default handler for the
    session (children then start with the default disposition)."""
    prev = signal.getsignal(signal.SIGINT)
    if prev is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if prev is signal.SIG_IGN:
        signal.signal(signal.SIGINT, prev)
