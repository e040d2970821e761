"""hamattn: a generator of verified binary-code (Hamming) attention hardware.

Layout of the namespace: ``hamattn.config`` (the one config object), ``hamattn.golden``
(NumPy model), ``hamattn.rtl`` (Amaranth components), ``hamattn.gen`` (Verilog, manifest,
command line), ``hamattn.verif`` (tests and cocotb testbench), ``hamattn.synth`` (Yosys and
nextpnr flows) and ``hamattn.bench`` (benchmarks).
"""
from .config import CoreConfig, ConfigError, WeightsError

__all__ = ["CoreConfig", "ConfigError", "WeightsError"]
__version__ = "0.1.0"
