"""Gradient norms and clipping by the global L2 norm, safe against float32 overflow."""

import math

import numpy as np


def global_norm(dw):
    """‖dw‖₂ as a Python float. Σdw² overflows float32 long before the norm does (entries near 1e19 suffice), so
    an infinite float32 result is summed again in float64."""
    with np.errstate(over="ignore"):  # an overflow is caught right below
        norm = float(np.sqrt(np.dot(dw, dw)))
    if math.isinf(norm) and dw.dtype != np.float64:
        wide = dw.astype(np.float64)
        norm = float(np.sqrt(np.dot(wide, wide)))
    return norm


def clip_by_global_norm(dw, max_norm):
    """Scale dw in place so its L2 norm is at most max_norm; return the norm before clipping.

    A non-finite norm (an inf or NaN gradient) leaves dw as it is: scaling would turn it into zeros or NaN and
    hide the divergence that the next loss then reports."""
    norm = global_norm(dw)
    if max_norm is not None and math.isfinite(norm) and norm > max_norm:
        dw *= max_norm / norm
    return norm
