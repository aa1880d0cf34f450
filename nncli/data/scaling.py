"""Standardization: the training split's per-feature mean and std, applied to any rows, and the check that refuses
features whose standardization (or conversion to the training dtype) overflows, a data problem that training would
otherwise report as divergence."""

import numpy as np

from nncli.data.files import row_chunks
from nncli.errors import DataError


def standardize(X, mean, std, source=None):
    """(X - mean) / std in float64, with the training split's per-feature mean and std (D,); a value that overflows
    (features far beyond what the statistics were taken on) is a DataError, not a NaN prediction."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (X - mean) / std
    bad = np.argwhere(~np.isfinite(Z))
    if len(bad):
        r, c = bad[0]
        raise DataError(
            f"{source or 'features'}: sample {r} (0-based), feature {c} is {X[r, c]:g}, which standardized with "
            f"mean {mean[c]:g} and std {std[c]:g} overflows float64; the features are out of range"
        )
    return Z


def check_scale(X, mean, std, dtype, source, names=None):
    """Refuse features whose standardization (or, without it, conversion to `dtype`) overflows: a data problem,
    which training would otherwise report as divergence."""
    limit = np.finfo(dtype).max
    low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
    for _, block in row_chunks(X):
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    with np.errstate(over="ignore", invalid="ignore"):
        ends = np.stack([low, high]).astype(np.float64)
        scaled = ends if mean is None else (ends - mean) / std
        fits = np.isfinite(scaled) & (np.abs(scaled) <= limit)
        if mean is not None:
            fits &= np.isfinite(mean + std)
    if fits.all():
        return
    end, c = np.argwhere(~fits)[0]
    feature = repr(names[c]) if names else f"{c} (0-based)"
    why = f"it does not fit in {np.dtype(dtype).name} (at most ±{limit:g})"
    if mean is not None:
        why = f"standardized with the training mean {mean[c]:g} and std {std[c]:g}, {why}"
        if not np.isfinite(mean[c] + std[c]):
            why = "its mean or spread over the training split overflows float64"
    raise DataError(
        f"{source}: feature {feature} reaches {ends[end, c]:g}; {why}: the features are out of range "
        f"(a data problem, not the learning rate); rescale them"
    )


def moments(X, rows):
    """Per-feature mean and std (D,) of X[rows], in chunks (Chan's parallel update); a constant feature gets std 1."""
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing features are refused by check_scale
        return _chan_moments(X, rows)


def _chan_moments(X, rows):
    n, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
    low, high = np.full(X.shape[1], np.inf), np.full(X.shape[1], -np.inf)
    for _, block in row_chunks(X, rows):
        block = np.asarray(block, dtype=np.float64)
        k, block_mean = len(block), block.mean(axis=0)
        delta = block_mean - mean
        m2 += ((block - block_mean) ** 2).sum(axis=0) + delta**2 * n * k / (n + k)
        mean += delta * k / (n + k)
        n += k
        low, high = np.minimum(low, block.min(axis=0)), np.maximum(high, block.max(axis=0))
    std = np.sqrt(m2 / n)
    std[low == high] = 1.0
    return mean, std
