"""Every registered algorithm keeps its time limit: it returns within ``time_limit + 5 % + 2 s``
of wall-clock time, with a feasible placement, on an instance it cannot finish in that time.

Each run happens in a child process that is killed once well past the promise, so an
algorithm that never returns fails the test instead of hanging the suite.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import time

import pytest

from slimcaching.algorithms import REGISTRY, run
from slimcaching.instances.generators import random_instance
from slimcaching.result import Status

LIMIT = 1.0
ALLOWED = LIMIT * 1.05 + 2.0
#: Parameters that make the limit, not a size guard, end the run (brute force refuses this
#: instance at once with its default ``max_placements``).
PARAMS = {"brute-force": {"max_placements": 10**200}}


def _instance():
    # without a limit: successive 1.7 s, cyclic 4.6 s, polish 10.8 s, best 17.8 s (2 cores)
    return random_instance(layers=8, experts=32, top_k=4, nodes=4, users=2, seed=1, capacity_fraction=0.1,
                           tokens=512)


def _child(name: str, params: dict, conn) -> None:
    inst = _instance()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    try:
        res = run(inst, name, seed=0, time_limit=LIMIT, **params)
    except Exception as exc:  # noqa: BLE001 - reported by the test, not lost in the child
        conn.send(repr(exc))
        return
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    conn.send((wall, bool(res.feasible and res.placement.is_feasible(inst)), res.latency, res.empty_latency,
               str(res.status), res.info, rss0 * 1024, peak * 1024))


def _timed(name: str, **params):
    """``(wall s, feasible, latency, empty latency, status, info, peak RSS before, after (bytes))``,
    or ``None`` if killed."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(name, params, child))
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
@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_algorithm_returns_within_its_time_limit(name):
    out = _timed(name, **PARAMS.get(name, {}))
    assert out is not None, f"{name} did not return under a {LIMIT} s limit"
    assert not isinstance(out, str), out
    wall, feasible, lat, empty, status = out[:5]
    assert wall <= ALLOWED, f"{name} took {wall:.2f} s under a {LIMIT} s limit"
    assert feasible
    assert lat <= empty + 1e-12


@pytest.mark.slow
def test_the_limit_binds_on_this_instance():
    """Not vacuous: best stops on the limit here and says so."""
    out = _timed("best")
    assert out is not None and not isinstance(out, str) and out[4] == str(Status.TIME_LIMIT)


def test_brute_force_streams_its_caches_within_the_limit_and_bounded_memory():
    """With the guard lifted (10^200 placements allowed; this instance has about 9e137), brute force
    used to list every maximal cache of every node first: killed at 24 GB.  Now it streams them,
    evaluates from the first placement on, and stops at the limit with its best so far."""
    out = _timed("brute-force", **PARAMS["brute-force"])
    assert out is not None, f"brute-force did not return under a {LIMIT} s limit"
    assert not isinstance(out, str), out
    wall, feasible, lat, empty, status, info, rss0, peak = out
    assert wall <= ALLOWED, f"brute-force took {wall:.2f} s under a {LIMIT} s limit"
    assert status == str(Status.TIME_LIMIT) and info["stopped_by"] == "time_limit"  # never "optimal" here
    assert info["placements"] > 10**100 and 0 < info["placements_evaluated"] < info["placements"]
    assert feasible and lat < empty  # a placement it evaluated, better than the cloud
    assert peak < 1 << 30, f"peak RSS {peak / 2**20:.0f} MiB"
    assert peak - rss0 < 256 << 20, f"brute-force grew the RSS by {(peak - rss0) / 2**20:.0f} MiB"
