"""Bit-exact NumPy model of SPEC §2-§3: :func:`run` is the meaning of the core."""
from .model import (GoldenResult, run, hash_codes, pack_codes, hamming, rdiv, linear_state,
                    attention_outputs)

__all__ = ["GoldenResult", "run", "hash_codes", "pack_codes", "hamming", "rdiv",
           "linear_state", "attention_outputs"]
