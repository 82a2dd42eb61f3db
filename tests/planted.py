"""Algorithms the runner tests plant in the registry: they hang, crash or sleep on purpose.

Kept in a module of their own, with light imports, so that worker processes
(which import an algorithm by its ``"module:function"`` name) load them fast.
"""
from __future__ import annotations

import os
import signal
import time


def hang(instance, *, seed=None, time_limit=None, **params):
    """Ignores its time limit and never returns."""
    while True:
        time.sleep(0.05)


def crash(instance, *, seed=None, time_limit=None, **params):
    """Kills its own process, as a crash in compiled code would."""
    os.kill(os.getpid(), signal.SIGKILL)


def sleepy(instance, *, seed=None, time_limit=None, **params):
    """The empty placement, after sleeping ``params["s"]`` seconds (default 0.2)."""
    from slimcaching.result import make_result

    time.sleep(float(params.get("s", 0.2)))
    return make_result(instance, instance.empty_placement(), algorithm="sleepy", status="heuristic",
                       runtime_s=0.0, params=params, seed=seed)
