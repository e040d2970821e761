"""hamattn: a generator of verified binary-code (Hamming) attention hardware.

Layout of the namespace: ``hamattn.config`` (the one config object and its parameter table),
``hamattn.cli`` (the ``hamattn`` command) and ``hamattn.flags`` (the parameters as flags),
``hamattn.golden`` (NumPy model), ``hamattn.fit`` (fitting the hash to data),
``hamattn.rtl`` (Amaranth components), ``hamattn.gen`` (Verilog, manifest),
``hamattn.verif`` (testbenches and drivers), ``hamattn.synth`` (Yosys and nextpnr flows) and
``hamattn.bench`` (benchmarks); the tests are in ``tests/`` (docs/architecture.md).
"""
from .config import CoreConfig, ConfigError, WeightsError

__all__ = ["CoreConfig", "ConfigError", "WeightsError"]
__version__ = "0.1.0"
