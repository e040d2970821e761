"""Amaranth components of the core, one per concern, each built from its plan (plain
Python, see :mod:`.plan`); see each class's docstring for ports, widths, latency and
throughput."""
from .plan import Timing
from .hash import HashPlan, HashProjection, FoldedHashProjection
from .hamming import HammingPlan, HammingDistance
from .linear import LinearPlan, LinearValuePath, FoldedLinearValuePath
from .scan import ScanPlan, ScanValuePath, FoldedScanValuePath, TopkValuePath
from .hsoftmax import HsoftmaxPlan, HsoftmaxValuePath
from .divider import DividerPlan, RoundingDivider
from .core import CorePlan, AttentionCore, AxiStreamCore

__all__ = ["Timing", "HashPlan", "HashProjection", "FoldedHashProjection", "HammingPlan",
           "HammingDistance", "LinearPlan", "LinearValuePath", "FoldedLinearValuePath",
           "ScanPlan", "ScanValuePath", "FoldedScanValuePath", "TopkValuePath",
           "HsoftmaxPlan", "HsoftmaxValuePath", "DividerPlan", "RoundingDivider", "CorePlan",
           "AttentionCore",
           "AxiStreamCore"]
