"""What the tests share: the named corners of :mod:`hamattn.verif.corners` as arguments,
and the MiniLM model.

A test takes a corner by naming an argument after its table; :func:`pytest_generate_tests`
parametrizes it (``--import-mode=importlib`` cannot import this file by name, so tests do
not import lists from it):

* ``sweep_corner``: each dict of :data:`~hamattn.verif.corners.SWEEP` (``make sweep``),
  ids by :func:`~hamattn.verif.corners.corner_id`;
* ``cocotb_corner``: :data:`~hamattn.verif.corners.CORNER` and ``CORNER_W16``;
* ``baseline_corner``, ``baseline_sim_corner``: the names of
  :data:`~hamattn.verif.corners.BASELINE_CORNERS` and ``BASELINE_SIM_CORNERS``.

The tables themselves stay in ``verif/corners.py``: ``ci/same_verilog.py`` hashes the same
corners, and the tests that cross several tables (value paths, core) build their cases from
them.
"""

import signal

import pytest

from hamattn.bench import minilm
from hamattn.verif import corners

#: argument name -> (values, ids)
CORNER_ARGS = {
    "sweep_corner": (corners.SWEEP, [corners.corner_id(p) for p in corners.SWEEP]),
    "cocotb_corner": ([corners.CORNER, corners.CORNER_W16],
                      ["d1-w2-b70-N1-topk", "d3-w16-b65-N5-hsoftmax"]),
    "baseline_corner": (list(corners.BASELINE_CORNERS), None),
    "baseline_sim_corner": (list(corners.BASELINE_SIM_CORNERS), None),
}


def pytest_generate_tests(metafunc):
    for name, (values, ids) in CORNER_ARGS.items():
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, values, ids=ids)


@pytest.fixture(scope="session")
def model():
    """The NumPy all-MiniLM-L6-v2 (bench/minilm.py); skips, naming the missing extra, when
    the optional 'fidelity' extra is not installed."""
    try:
        return minilm.load()
    except minilm.MissingExtra as e:
        pytest.skip(f"MiniLM forward pass not tested: {e}")


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def interruptible():
    """``preexec_fn`` for a child process that a test interrupts with SIGINT: Ctrl-C's
    default action restored in it. A pytest started in the background by a shell without job
    control (``make test &``, a script) runs with SIGINT ignored, and its children inherit the
    ignore: Python then installs no KeyboardInterrupt handler, and Ctrl-C would do nothing."""
    return _sigint_default
