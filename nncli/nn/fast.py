"""The engine's speed tricks, one named helper each: what it computes, and the plain way it replaces.

Times are µs per call measured on a 2-core AMD EPYC, float32, batch 128, 256 units; the plain versions live in
reference.py, and tests/test_fast_path.py holds the two to the same numbers.
"""

import numpy as np


def sum_rows(a, ones, out):
    """Σ_rows a (the bias gradient db = Σ_rows dout) as the GEMV ones·a, into `out` (2.1 µs; a.sum(axis=0): 5.7)."""
    return np.matmul(ones, a, out=out)


def relu_into(x, zeros, out):
    """max(0, x) into `out`, against an array of zeros (2.8 µs; against the scalar 0: 13)."""
    return np.maximum(x, zeros, out=out)


def relu_backward_into(dout, h, mask, out):
    """dout where h > 0, else 0, as dout · [h > 0] through a float mask (8.9 µs; dout[h <= 0] = 0: 45)."""
    np.greater(h, 0, out=mask)
    return np.multiply(dout, mask, out=out)


_ROW_STARTS = {}


def row_starts(n, c):
    """[0, c, 2c, …] (n,): the flat index of each row's first element of an (n, c) array, cached per shape, so
    picking s_i,y_i is one flat `take` (no per-step arange, no 2-D fancy indexing)."""
    if (n, c) not in _ROW_STARTS:
        _ROW_STARTS[n, c] = np.arange(n) * c
    return _ROW_STARTS[n, c]


def column_dots(a, b, out):
    """Σ_rows a·b (H,) without forming a·b, as einsum("ij,ij->j") (23.6 µs at 256 × 512; a·b then a GEMV: 29)."""
    return np.einsum("ij,ij->j", a, b, out=out)


def row_dots(a, b, out):
    """Σ_units a·b (N,) of each row, as einsum("ij,ij->i"), without forming a·b."""
    return np.einsum("ij,ij->i", a, b, out=out)
