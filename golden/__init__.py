"""Bit-exact NumPy model of SPEC §2-§3: :func:`run` is the meaning of the core;
:func:`attention` runs one head's float attention through it (a drop-in for softmax)."""
from .model import (GoldenResult, run, hash_codes, pack_codes, hamming, rdiv, linear_state,
                    attention_outputs)
from .attention import attention, quantize, quant_scale, softmax_attention

__all__ = ["GoldenResult", "run", "hash_codes", "pack_codes", "hamming", "rdiv",
           "linear_state", "attention_outputs", "attention", "quantize", "quant_scale",
           "softmax_attention"]
