"""Worker processes of a sweep: every run in a process that can be ended on its own.

The runner (:mod:`slimcaching.analysis.runner`) keeps the bookkeeping; this
module holds the two ends of one worker:

* :class:`Worker`, the parent's handle: starts ``python -m
  slimcaching.analysis.worker``, ships an instance to it once (the worker keeps
  the last few by content hash), sends runs, and reads back the result columns
  of a store row.  :meth:`Worker.expire` ends the process when a run passes its
  hard timeout, and the run becomes a ``timeout`` row; a worker that dies
  (killed, out of memory, a crash in compiled code) gives an ``error`` row.
* :func:`main`, the worker's loop.

A worker dies with its parent: on Linux the kernel sends it ``SIGKILL`` when
the thread that started it ends (``PR_SET_PDEATHSIG``; workers are started
from one long-lived thread per process, see :func:`_spawn`), and on every
platform a watcher thread ends it within a quarter of a second of its parent's
death.  Workers ignore ``SIGINT``: Ctrl-C reaches the whole foreground process
group, and the parent decides what to keep and ends its workers itself.

The worker runs the parent's registry of algorithms (names added at run time
included) with the parent's ``sys.path``, so a sweep gives the same rows in a
worker as in the parent (``tests/test_runner.py`` compares them).
"""
from __future__ import annotations

import importlib
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterable

__all__ = ["Worker", "WorkerStartError", "run_columns", "timeout_columns", "end_all", "main"]

#: Instances a worker keeps (least recently used dropped first); runs are
#: dispatched grouped by instance, so a worker rarely needs more than one.
KEEP_INSTANCES = 4


class WorkerStartError(OSError):
    """A worker process could not start (reported as one line, exit code 1)."""


def run_columns(task: Any, family: Any, instance: Any) -> dict[str, Any]:
    """Run one task on a parsed instance: the result columns of its store row.

    Never raises for a failing algorithm: any ``Exception`` becomes status
    ``"error"`` with the exception in ``message`` and the traceback tail in
    ``info`` (the next sweep retries it).  ``KeyboardInterrupt`` propagates.
    ``info["cpu_s"]`` is the CPU time of the process during the run (unless the
    method reports its own), next to the wall time ``wall_s``: on a shared
    machine the two differ, and the CPU time is the comparable one.
    """
    import json

    from ..result import versions

    cols: dict[str, Any] = {"versions": versions()}
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        cols.update(family.run(instance, task.algorithm, seed=task.seed, time_limit=task.time_limit,
                               params=json.loads(task.params)))
    except Exception as exc:  # recorded, never fatal to the sweep
        cols.update({"status": "error", "message": f"{type(exc).__name__}: {exc}",
                     "info": {"traceback": traceback.format_exc(limit=4)}})
    cols["wall_s"] = time.perf_counter() - t0
    cpu = time.process_time() - c0  # every thread of the process (HiGHS's included): the run's CPU on a shared machine
    info = cols.get("info")
    if isinstance(info, dict) or info is None:
        cols["info"] = {"cpu_s": cpu, **(info or {})}  # a method's own CPU count, when it has one, wins
    return _with_limits(cols, task)


def timeout_columns(task: Any, hard_timeout: float, elapsed: float) -> dict[str, Any]:
    """The result columns of a run ended at its hard timeout."""
    from ..result import versions

    cols = {"status": "timeout", "versions": versions(), "wall_s": elapsed, "feasible": None,
            "message": f"no result within the hard timeout of {hard_timeout:.6g} s; the worker process was ended",
            "info": {"hard_timeout": hard_timeout}}
    return _with_limits(cols, task)


def _died_columns(task: Any, returncode: int | None, elapsed: float, tail: str) -> dict[str, Any]:
    from ..result import versions

    how = (f"killed by signal {-returncode}" if returncode is not None and returncode < 0
           else f"exit code {returncode}")
    msg = f"the worker process died during the run ({how})" + (f": {tail}" if tail else "")
    return _with_limits({"status": "error", "versions": versions(), "wall_s": elapsed, "message": msg,
                         "info": {}}, task)


def _with_limits(cols: dict[str, Any], task: Any) -> dict[str, Any]:
    if task.time_limit is not None:
        info = cols.get("info") or {}
        if isinstance(info, dict):
            cols["info"] = {**info, "time_limit": task.time_limit}
    return cols


# ---------------------------------------------------------------- the parent's end
class _Spawner:
    """One long-lived thread per process that starts every worker.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that started a child ends, so
    workers started from a short-lived thread (a dask worker's task thread)
    would die with it; started from here they live as long as this process.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="slimcaching-spawner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            args, kwargs, reply = self._requests.get()
            try:
                reply.put((True, subprocess.Popen(*args, **kwargs)))
            except BaseException as exc:  # handed to the caller
                reply.put((False, exc))

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put((args, kwargs, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value


_SPAWNER: _Spawner | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawn(*args, **kwargs) -> subprocess.Popen:
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None or not _SPAWNER._thread.is_alive():
            _SPAWNER = _Spawner()
        spawner = _SPAWNER
    return spawner.popen(*args, **kwargs)


class Worker:
    """The parent's handle on one worker process (started on first use, restarted after a kill).

    Parameters
    ----------
    registry : dict, optional
        Algorithm names to ``"module:function"`` the worker adds to its
        registry (default: the parent's :data:`~slimcaching.algorithms.REGISTRY`).
    preload : iterable of str
        Algorithms whose modules the worker imports before it reports ready, so
        that no run's clock (and hard timeout) pays for importing them.
    """

    def __init__(self, registry: dict[str, str] | None = None, preload: Iterable[str] = ()):
        _HANDLES.add(self)
        self._registry = registry
        self._preload = sorted(set(preload))
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self._stderr = None
        self._holds: OrderedDict[str, None] = OrderedDict()
        self._ready = False
        self.task: Any = None
        self.started = 0.0
        self.hard_timeout: float | None = None
        self.deadline: float | None = None

    # -------------------------------------------------------------- life cycle
    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.alive:
            return
        self.close()
        if self._registry is None:
            from ..algorithms import REGISTRY

            self._registry = dict(REGISTRY)
        mine, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = _spawn([sys.executable, "-m", "slimcaching.analysis.worker", str(theirs.fileno()),
                                str(os.getpid())], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=self._stderr, close_fds=True)
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())
        self.conn.send(("init", {"sys_path": list(sys.path), "registry": self._registry,
                                 "preload": self._preload}))
        self._holds.clear()
        self._ready = False

    def _wait_ready(self) -> None:
        """Wait until the worker has imported the algorithms, so a run's clock starts with the run."""
        if not self._ready:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                rc = self.proc.wait(timeout=5) if self.proc is not None else None
                tail = self._stderr_tail()
                self.kill()
                raise WorkerStartError(f"a worker process failed to start (exit code {rc})"
                                       + (f": {tail}" if tail else "")) from None
            assert msg == ("ready",), msg
            self._ready = True

    def kill(self) -> None:
        """End the process now (``SIGKILL``) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process stuck in the kernel
                pass
        self.close()

    def close(self) -> None:
        """Ask an idle worker to exit and release the handle's resources."""
        if self.conn is not None:
            try:
                if self.alive and self.task is None:
                    self.conn.send(None)
            except OSError:
                pass
            self.conn.close()
            self.conn = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self.proc = None
        self.task = None
        self.deadline = None

    # -------------------------------------------------------------- runs
    def __del__(self) -> None:  # a handle dropped with its thread (dask) takes its process along
        try:
            self.kill()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def holds(self, instance_hash: str) -> bool:
        return instance_hash in self._holds

    def submit(self, task: Any, instance: Callable[[], tuple[str, Any]], hard_timeout: float | None) -> None:
        """Send one run; ``instance()`` gives ``(family name, instance)`` when the worker lacks it."""
        self.start()
        self._wait_ready()
        h = task.instance_hash
        if h not in self._holds:
            family, inst = instance()
            self.conn.send(("instance", h, family, inst))
            self._holds[h] = None
            while len(self._holds) > KEEP_INSTANCES:
                self._holds.popitem(last=False)
        self._holds.move_to_end(h)
        self.conn.send(("run", task))
        self.task = task
        self.started = time.monotonic()
        self.hard_timeout = hard_timeout
        self.deadline = None if hard_timeout is None else self.started + hard_timeout

    def receive(self) -> tuple[Any, dict[str, Any]]:
        """``(task, result columns)`` of the finished run (an ``error`` row if the worker died)."""
        task, elapsed = self.task, time.monotonic() - self.started
        try:
            kind, cols = self.conn.recv()
            assert kind == "row"
        except (EOFError, OSError):
            rc = self.proc.wait(timeout=5) if self.proc is not None else None
            cols = _died_columns(task, rc, elapsed, self._stderr_tail())
            self.kill()
        self.task = None
        self.deadline = None
        return task, cols

    def expire(self) -> tuple[Any, dict[str, Any]]:
        """End the running task at its hard timeout: ``(task, timeout columns)``."""
        task, elapsed = self.task, time.monotonic() - self.started
        hard = self.hard_timeout if self.hard_timeout is not None else elapsed
        self.task = None
        self.kill()
        return task, timeout_columns(task, hard, elapsed)

    def run(self, task: Any, instance: Callable[[], tuple[str, Any]], hard_timeout: float | None
            ) -> dict[str, Any]:
        """Run one task and wait for it (the dask path): the result columns."""
        self.submit(task, instance, hard_timeout)
        while True:
            wait = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
            if self.conn.poll(wait):
                return self.receive()[1]
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return self.expire()[1]

    def _stderr_tail(self, n: int = 300) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - n))
            lines = self._stderr.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1] if lines else ""


_HANDLES: "weakref.WeakSet[Worker]" = weakref.WeakSet()


def end_all() -> None:
    """Kill every worker process this process started (an interrupted dask sweep: a dask
    thread waiting for its worker's run returns once the worker is gone)."""
    for w in list(_HANDLES):
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()


# ---------------------------------------------------------------- the worker's end
def _die_with_parent(parent: int) -> None:
    """End this process when ``parent`` dies: ``PR_SET_PDEATHSIG`` on Linux, a watcher everywhere."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """The worker loop: ``python -m slimcaching.analysis.worker FD PARENT_PID``."""
    argv = sys.argv[1:] if argv is None else argv
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    kind, init = conn.recv()
    sys.path[:0] = [p for p in init["sys_path"] if p not in sys.path]
    from ..algorithms import REGISTRY
    from .families import get_family

    REGISTRY.update(init["registry"])
    for name in init["preload"]:  # imported now, so that no run's clock pays for it
        try:
            importlib.import_module(REGISTRY[name].split(":")[0])
        except Exception:  # noqa: BLE001 - unknown here, or fails to import: the run reports it
            pass
    conn.send(("ready",))
    held: OrderedDict[str, tuple[Any, Any]] = OrderedDict()
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return 0
        if msg is None:
            return 0
        if msg[0] == "instance":
            _, h, family, inst = msg
            held[h] = (get_family(family), inst)
            while len(held) > KEEP_INSTANCES:
                held.popitem(last=False)
        elif msg[0] == "run":
            task = msg[1]
            fam, inst = held[task.instance_hash]
            held.move_to_end(task.instance_hash)
            conn.send(("row", run_columns(task, fam, inst)))


if __name__ == "__main__":
    sys.exit(main())
