"""Amaranth components of the core, one per concern (see each class's docstring for ports,
widths, latency and throughput)."""
from .hash import HashProjection
from .hamming import HammingDistance
from .linear import LinearValuePath
from .scan import ScanValuePath, TopkValuePath, HsoftmaxValuePath
from .divider import RoundingDivider
from .core import AttentionCore, AxiStreamCore, value_path

__all__ = ["HashProjection", "HammingDistance", "LinearValuePath", "ScanValuePath",
           "TopkValuePath", "HsoftmaxValuePath", "RoundingDivider", "AttentionCore",
           "AxiStreamCore", "value_path"]
