"""Penalties on weight matrices (never biases), added to the data loss.

L2: 0.5·l2·Σ‖W‖², gradient l2·W.  L1: l1·Σ|W|, subgradient l1·sign(W). Both at once is elastic net.
`w` may be one matrix or the network's flat block of every weight.
"""

import numpy as np

from nncli.blas import axpy


def regularization_loss(w, l2=0.0, l1=0.0):
    """0.5·l2·Σw² + l1·Σ|w| as a Python float."""
    flat = w.reshape(-1)
    loss = 0.0
    if l2:
        loss += 0.5 * l2 * float(np.dot(flat, flat))
    if l1:
        loss += l1 * float(np.abs(flat).sum())
    return loss


def add_regularization_grad(w, dw, l2=0.0, l1=0.0, scratch=None):
    """dw += l2·w + l1·sign(w), in place; `scratch` (shape of w) avoids temporaries."""
    if l2:
        axpy(l2, w, dw, scratch)
    if l1:
        axpy(l1, np.sign(w, out=scratch), dw)
    return dw


def l1_kinks(w, l1=0.0):
    """Which side of 0 each weight is on when L1 is active (|w| has a kink at 0), else None."""
    return w > 0 if l1 else None
