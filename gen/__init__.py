"""Verilog emission, the manifest and the ``hamattn`` command line."""
from .verilog import DEFAULT_TOP, generate, verilog_text
from .manifest import manifest, ports

__all__ = ["DEFAULT_TOP", "generate", "verilog_text", "manifest", "ports"]
