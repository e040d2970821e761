"""Fitting the hash projection (and the ``hsoftmax`` shift table) to data: an Adam/ITQ
trainer in NumPy (:mod:`.train`) and ``hamattn fit`` (:mod:`.cli`). Not part of the
bit-exact model (golden/): it writes the weights file that the config then loads."""

from .train import (METHODS, SPEC_KEYS, attention_ce, fit_default, fit_hash, fit_shifts,
                    hash_bits, itq_rotation, quantization_loss, quantize_weights,
                    refine_shifts, save_weights, shift_table, weight_limit, window_data)

__all__ = ["METHODS", "SPEC_KEYS", "attention_ce", "fit_default", "fit_hash", "fit_shifts",
           "hash_bits", "itq_rotation", "quantization_loss", "quantize_weights",
           "refine_shifts", "save_weights", "shift_table", "weight_limit", "window_data"]
