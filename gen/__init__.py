"""Verilog emission (the core's and the baselines') and the manifest."""
from .verilog import DEFAULT_TOP, generate, verilog_text
from .manifest import manifest, ports

__all__ = ["DEFAULT_TOP", "generate", "verilog_text", "manifest", "ports"]
