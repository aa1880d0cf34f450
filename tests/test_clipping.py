"""Gradient clipping by global norm: exact in float32 where Σdw² overflows, and never hiding a non-finite gradient."""

import numpy as np
import pytest

from nncli.optim.clipping import clip_by_global_norm, global_norm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipping_scales_huge_gradients_to_the_limit_in_both_dtypes(dtype):
    dw = np.full(10, 1e19, dtype)  # Σdw² = 1e39 overflows float32; the norm itself (3.2e19) does not
    norm = clip_by_global_norm(dw, 1.0)
    assert norm == pytest.approx(np.sqrt(10) * 1e19, rel=1e-6)
    np.testing.assert_allclose(dw, np.full(10, 1 / np.sqrt(10)), rtol=1e-6)


def test_small_gradients_are_left_alone_and_the_norm_is_reported():
    dw = np.array([3.0, 4.0], np.float32)
    assert clip_by_global_norm(dw, 10.0) == pytest.approx(5.0)
    assert dw.tolist() == [3.0, 4.0]


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_a_non_finite_gradient_is_not_scaled_into_zeros(bad):
    dw = np.array([1.0, bad, 2.0], np.float32)
    assert not np.isfinite(clip_by_global_norm(dw, 1.0))
    assert dw[0] == 1.0 and dw[2] == 2.0  # left for the divergence check to report, not silently zeroed
    assert not np.isfinite(global_norm(dw))
