"""process.py: ``stoppable``, the one Ctrl-C/SIGTERM handler of the ``hamattn`` command and
of every benchmark (``python -m hamattn.bench.*``)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hamattn
from hamattn import process

_SLEEPER = """
import subprocess, sys
from hamattn.process import stoppable
def main():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(child.pid, flush=True)
    child.wait()
sys.exit(stoppable("sleeper", main))
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stopped_with_one_line_and_no_child_left(signum, interruptible):
    proc = subprocess.Popen([sys.executable, "-c", _SLEEPER], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=interruptible)
    child = int(proc.stdout.readline())
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines() == [f"sleeper: stopped by {signal.Signals(signum).name}"]
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_status_of_a_normal_return():
    assert process.stoppable("x", lambda: None) == 0
    assert process.stoppable("x", lambda: 3) == 3


def test_every_benchmark_runs_under_stoppable():
    """A benchmark's ``__main__`` goes through ``stoppable``: Ctrl-C gives one line, no
    traceback, and ends the tools it started."""
    bench = Path(hamattn.__file__).parent / "bench"
    mains = [p for p in sorted(bench.glob("*.py")) if '__name__ == "__main__"' in p.read_text()]
    assert len(mains) >= 10
    for p in mains:
        tail = p.read_text().split('__name__ == "__main__"', 1)[1]
        assert f'stoppable("python -m hamattn.bench.{p.stem}", main)' in tail, p.name
