"""Every registered algorithm keeps its time limit: it returns within ``time_limit + 5 % + 2 s``
of wall-clock time, with a feasible placement, on an instance it cannot finish in that time.

Each run happens in a child process that is killed once well past the promise, so an
algorithm that never returns fails the test instead of hanging the suite.
"""
from __future__ import annotations

import multiprocessing as mp
import time

import pytest

from slimcaching.algorithms import REGISTRY, run
from slimcaching.instances.generators import random_instance
from slimcaching.result import Status

LIMIT = 1.0
ALLOWED = LIMIT * 1.05 + 2.0
#: The exact references are being made to count their set-up against the limit in
#: separate work on the exact solver and the brute force; until then they overrun here.
PENDING = {"exact": "exact's Pyomo build and the hand-over to HiGHS are not yet counted against the limit",
           "brute-force": "brute-force's enumeration does not yet check the limit before it starts"}


def _instance():
    # without a limit: successive 1.7 s, cyclic 4.6 s, polish 10.8 s, best 17.8 s (2 cores)
    return random_instance(layers=8, experts=32, top_k=4, nodes=4, users=2, seed=1, capacity_fraction=0.1,
                           tokens=512)


def _child(name: str, conn) -> None:
    inst = _instance()
    t0 = time.perf_counter()
    res = run(inst, name, seed=0, time_limit=LIMIT)
    wall = time.perf_counter() - t0
    conn.send((wall, bool(res.feasible and res.placement.is_feasible(inst)), res.latency, res.empty_latency,
               str(res.status)))


def _timed(name: str):
    """``(wall seconds, feasible, latency, empty latency, status)``, or ``None`` if killed."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(name, child))
    proc.start()
    child.close()
    # generating the instance is not part of the run: allow for it before killing
    out = parent.recv() if parent.poll(ALLOWED + 30.0) else None
    proc.join(timeout=5.0)
    if proc.is_alive():
        proc.kill()
        proc.join()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(reason=PENDING[n], strict=False))
                                  if n in PENDING else n for n in REGISTRY])
def test_every_algorithm_returns_within_its_time_limit(name):
    out = _timed(name)
    assert out is not None, f"{name} did not return under a {LIMIT} s limit"
    wall, feasible, lat, empty, status = out
    assert wall <= ALLOWED, f"{name} took {wall:.2f} s under a {LIMIT} s limit"
    assert feasible
    assert lat <= empty + 1e-12


@pytest.mark.slow
def test_the_limit_binds_on_this_instance():
    """Not vacuous: best stops on the limit here and says so."""
    out = _timed("best")
    assert out is not None and out[4] == str(Status.TIME_LIMIT)
