"""Speed never costs correctness: the optimized engine agrees with a plain, allocate-everything reference.

The reference, `nncli.nn.reference`, is the lecture's math written the obvious way (new arrays everywhere, one
formula per line); in float64 the network's buffered, in-place, BLAS-backed path must match it to ~1e-10.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nncli import blas
from nncli.nn import fast, reference
from nncli.nn.activations import ACTIVATIONS
from nncli.nn.layers import Dropout
from nncli.nn.losses import LOSSES, softmax_loss
from nncli.nn.network import Network
from nncli.optim import reference as optim_reference
from nncli.optim.fused import fused_update
from nncli.optim.rules import OPTIMIZERS, hyperparameters, make_optimizer

RTOL, ATOL = 1e-10, 1e-12
SLOPE, ALPHA = 0.05, 0.7


def reference_loss_and_grads(params, X, y, activation, loss, l2, l1, masks):
    """Total loss and {name: gradient} of the same net, computed plainly by the reference."""
    return reference.net_loss(params, X, y, activation, loss, l2, l1, masks=masks, negative_slope=SLOPE, alpha=ALPHA)


def test_the_reference_covers_every_activation_loss_and_update_rule():
    assert set(reference.ACTIVATIONS) == set(ACTIVATIONS)
    assert set(reference.LOSSES) == set(LOSSES)
    assert set(optim_reference.UPDATE_RULES) == set(OPTIMIZERS)


@pytest.fixture(params=["blas", "numpy"])
def update_path(request, monkeypatch):
    """Run a test with the BLAS routines of NumPy's own OpenBLAS (when found) and with the pure-NumPy fallback."""
    if request.param == "numpy":
        monkeypatch.setattr(blas, "_ROUTINES", {})
        monkeypatch.setattr(blas, "HAVE_GEMM", False)
    elif not blas.HAVE_GEMM:
        pytest.skip("NumPy's OpenBLAS not found: only the NumPy path exists")
    return request.param


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh", "elu"])
@pytest.mark.parametrize("loss", ["softmax", "svm"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_loss_and_gradients_match_plain_reference(activation, loss, dropout, update_path):
    rng = np.random.default_rng(len(activation) + 10 * len(loss) + int(100 * dropout))
    X, y = rng.standard_normal((9, 6)), rng.integers(4, size=9)
    net = Network(
        6,
        [7, 5],
        4,
        activation=activation,
        activation_options={"negative_slope": SLOPE, "alpha": ALPHA},
        loss=loss,
        l2=0.03,
        l1=0.02,
        dropout=dropout,
        dtype=np.float64,
        rng=1,
    )
    for p in net.params.values():  # nonzero biases so every term of the gradient is exercised
        p += 0.1 * rng.standard_normal(p.shape)
    for _ in range(2):  # the second call reuses every buffer of the first
        total = net.loss(X, y)
        masks = [layer.mask for layer in net.layers if isinstance(layer, Dropout)]
        want, grads = reference_loss_and_grads(net.params, X, y, activation, loss, 0.03, 0.02, masks)
        assert total == pytest.approx(want, rel=RTOL)
        for name, g in grads.items():
            np.testing.assert_allclose(net.grads[name], g, rtol=RTOL, atol=ATOL, err_msg=name)


def test_smaller_last_batch_reuses_buffers_correctly():
    rng = np.random.default_rng(3)
    net = Network(5, [8], 3, l2=0.01, dtype=np.float64, rng=0)
    net.loss(rng.standard_normal((16, 5)), rng.integers(3, size=16))
    X, y = rng.standard_normal((5, 5)), rng.integers(3, size=5)
    total = net.loss(X, y)
    want, grads = reference_loss_and_grads(net.params, X, y, "relu", "softmax", 0.01, 0.0, [])
    assert total == pytest.approx(want, rel=RTOL)
    for name, g in grads.items():
        np.testing.assert_allclose(net.grads[name], g, rtol=RTOL, atol=ATOL)


def test_buffers_follow_batch_sizes_that_grow_and_shrink():
    """Each batch shape gets its own cached view; a bigger batch replaces the buffer and no stale view survives."""
    rng = np.random.default_rng(4)
    net = Network(5, [8, 6], 3, l2=0.01, dropout=0.25, dtype=np.float64, rng=0)
    for n in (5, 16, 5, 23, 16, 5):
        X, y = rng.standard_normal((n, 5)), rng.integers(3, size=n)
        total = net.loss(X, y)
        masks = [layer.mask for layer in net.layers if isinstance(layer, Dropout)]
        want, grads = reference_loss_and_grads(net.params, X, y, "relu", "softmax", 0.01, 0.0, masks)
        assert total == pytest.approx(want, rel=RTOL)
        for name, g in grads.items():
            np.testing.assert_allclose(net.grads[name], g, rtol=RTOL, atol=ATOL, err_msg=f"{name}, batch {n}")


@pytest.mark.parametrize("buffer", ["new", "scores", "strided"])
def test_softmax_loss_writes_the_gradient_wherever_asked(buffer):
    """In place over the scores, into a fresh array, or (non-contiguous buffer) into a new array it returns."""
    rng = np.random.default_rng(6)
    scores, y = 3 * rng.standard_normal((7, 4)), rng.integers(4, size=7)
    want_loss, want_grad = reference.softmax_loss(scores, y)
    work = scores.copy()
    dscores = {"new": None, "scores": work, "strided": np.empty((7, 8))[:, ::2]}[buffer]
    loss, grad = softmax_loss(work, y, dscores)
    assert loss == pytest.approx(want_loss, rel=RTOL)
    np.testing.assert_allclose(grad, want_grad, rtol=RTOL, atol=ATOL)


def plain_updates(name, w, grads, lr, **hyper):
    """The reference update rule `name` applied to w for each gradient in turn, its state carried in config."""
    update, config = optim_reference.UPDATE_RULES[name], {"learning_rate": lr, **hyper}
    for dw in grads:
        w, config = update(w, dw, config)
    return w


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "rmsprop", "adam"])
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
def test_optimizers_match_plain_formulas(name, dtype, rtol, update_path):
    rng = np.random.default_rng(0)
    size = 1031  # not a multiple of any SIMD width: vector body and scalar tail both run
    w0 = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(4)]
    every = {"momentum": 0.9, "decay_rate": 0.99, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    hyper = {h: every[h] for h in hyperparameters(name)}
    opt = make_optimizer(name, size, dtype, **hyper)
    w = w0.copy()
    for dw in grads:
        opt.step(w, dw.copy(), 0.05)
    want = plain_updates(name, w0.astype(np.float64), [g.astype(np.float64) for g in grads], 0.05, **hyper)
    np.testing.assert_allclose(w, want, rtol=rtol, atol=rtol)


def test_training_steps_are_bit_identical_run_to_run(update_path):
    """Same seed, same batches → the very same bits, whichever buffers the allocator hands out."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((64, 20)).astype(np.float32), rng.integers(3, size=64)
    thetas = []
    for _ in range(2):
        padding = np.empty(int(rng.integers(1, 999)), np.float32)  # shifts later allocations  # noqa: F841
        net = Network(20, [33], 3, l2=1e-3, dropout=0.2, rng=7)
        opt = make_optimizer("momentum", net.num_params, np.float32, momentum=0.9)
        for start in range(0, 64, 16):
            loss = net.loss(X[start : start + 16], y[start : start + 16])
            assert math.isfinite(loss)
            opt.step(net.theta, net.grad, 0.1)
        thetas.append(net.theta.copy())
    assert np.array_equal(thetas[0], thetas[1])


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_nets_with_a_norm_match_the_reference_at_every_batch_size(norm, dropout):
    """Loss and every gradient (gamma, beta included) of a three-layer net with a norm against the reference's staged
    backward, for batches that grow and shrink through 1 and 2 (the buffers' views follow)."""
    rng = np.random.default_rng(7)
    net = Network(6, [7, 5], 4, norm=norm, l2=0.03, l1=0.02, dropout=dropout, dtype=np.float64, rng=1)
    for p in net.params.values():
        p += 0.1 * rng.standard_normal(p.shape)
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(net.params)
    for n in (9, 2, 1, 16, 9):
        X, y = rng.standard_normal((n, 6)), rng.integers(4, size=n)
        total = net.loss(X, y)
        masks = [layer.mask for layer in net.layers if isinstance(layer, Dropout)]
        want, grads = reference.net_loss(net.params, X, y, l2=0.03, l1=0.02, masks=masks, norm=norm)
        assert set(grads) == set(net.grads)
        assert total == pytest.approx(want, rel=RTOL)
        for name, g in grads.items():
            np.testing.assert_allclose(net.grads[name], g, rtol=RTOL, atol=ATOL, err_msg=f"{name}, batch {n}")


def test_batchnorm_eval_scores_match_the_reference_with_the_running_averages():
    rng = np.random.default_rng(8)
    net = Network(6, [7], 4, norm="batchnorm", dtype=np.float64, rng=1)
    for _ in range(3):
        net.loss(rng.standard_normal((10, 6)), rng.integers(4, size=10))
    X, p = rng.standard_normal((5, 6)), net.params
    h, _ = reference.affine_forward(X, p["W1"], p["b1"])
    h = reference.batchnorm_eval(h, p["gamma1"], p["beta1"], net.running["running_mean1"], net.running["running_var1"])
    want, _ = reference.affine_forward(reference.relu_forward(h)[0], p["W2"], p["b2"])
    np.testing.assert_allclose(net.predict_scores(X), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_training_with_a_norm_is_bit_identical_run_to_run(norm):
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((40, 20)).astype(np.float32), rng.integers(3, size=40)
    states = []
    for _ in range(2):
        padding = np.empty(int(rng.integers(1, 999)), np.float32)  # shifts later allocations  # noqa: F841
        net = Network(20, [33, 9], 3, norm=norm, dropout=0.2, rng=7)
        opt = make_optimizer("adam", net.num_params, np.float32)
        for start in range(0, 40, 16):  # the last batch has 8 rows
            assert math.isfinite(net.loss(X[start : start + 16], y[start : start + 16]))
            opt.step(net.theta, net.grad, 0.01)
        states.append([net.theta.tobytes(), *(a.tobytes() for a in net.running.values())])
    assert states[0] == states[1]


@pytest.mark.parametrize("shape", [(1, 5), (7, 3), (256, 64)])
def test_the_norms_dot_products_equal_the_plain_sums_of_products(shape):
    """fast.column_dots and row_dots (the variance and dγ of the norms) are Σ_rows a·b and Σ_units a·b."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    np.testing.assert_allclose(fast.column_dots(a, b, np.empty(shape[1])), (a * b).sum(axis=0), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(fast.row_dots(a, b, np.empty(shape[0])), (a * b).sum(axis=1), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", ["sgd", "momentum"])
@pytest.mark.parametrize("norm", ["none", "batchnorm", "layernorm"])
@pytest.mark.parametrize("dropout,l2", [(0.0, 0.0), (0.0, 0.03), (0.3, 0.03)])
def test_the_update_folded_into_backward_matches_the_plain_reference(name, norm, dropout, l2):
    """The fold (nncli.optim.fused: each W updated by one GEMM during the backward pass, the biases and norm
    parameters by the optimizer afterwards) gives the reference's gradient followed by the reference's update rule,
    step after step, for batches that grow and shrink; dW itself is never written."""
    if not blas.HAVE_GEMM:
        pytest.skip("NumPy's OpenBLAS not found: nothing is folded")
    rng = np.random.default_rng(len(name) + len(norm))
    net = Network(6, [7, 5], 4, norm=norm, l2=l2, dropout=dropout, dtype=np.float64, rng=1)
    hyper = {"momentum": 0.9} if name == "momentum" else {}
    opt = make_optimizer(name, net.num_params, np.float64, **hyper)
    update = fused_update(opt, net, 0.05)
    want = {key: p.astype(np.float64) for key, p in net.params.items()}
    configs = {key: {"learning_rate": 0.05, **hyper} for key in want}
    for step, n in enumerate((9, 2, 16, 9), start=1):
        X, y = rng.standard_normal((n, 6)), rng.integers(4, size=n)
        net.grads["W1"][...] = 0
        net.loss(X, y, update=update)
        update.finish()
        assert not net.grads["W1"].any(), "a folded step never writes dW"
        masks = [layer.mask for layer in net.layers if isinstance(layer, Dropout)]
        _, grads = reference.net_loss(want, X, y, l2=l2, masks=masks, norm=norm)
        for key, g in grads.items():
            want[key], configs[key] = optim_reference.UPDATE_RULES[name](want[key], g, configs[key])
        for key, p in net.params.items():
            np.testing.assert_allclose(p, want[key], rtol=RTOL, atol=ATOL, err_msg=f"{key}, step {step}")
        assert opt.t == step


@pytest.mark.parametrize(
    "name,l1,clip",
    [("nesterov", 0.0, None), ("rmsprop", 0.0, None), ("adam", 0.0, None), ("momentum", 0.01, None), ("sgd", 0.0, 1.0)],
)
def test_rules_that_cannot_fold_take_the_plain_step(name, l1, clip):
    """Nesterov, RMSProp and Adam need dW itself; L1's sign and a global-norm clip need every gradient first."""
    net = Network(6, [7], 4, l1=l1, rng=1)
    assert fused_update(make_optimizer(name, net.num_params, np.float32), net, 0.1, clip) is None


def test_nothing_folds_without_numpys_blas(monkeypatch):
    monkeypatch.setattr(blas, "HAVE_GEMM", False)
    net = Network(6, [7], 4, rng=1)
    assert fused_update(make_optimizer("momentum", net.num_params, np.float32), net, 0.1) is None


def test_a_step_whose_loss_is_not_finite_is_not_folded():
    """The trainer reports a non-finite loss before any update: the fold leaves such a step alone, its gradient filled
    for the divergence report."""
    if not blas.HAVE_GEMM:
        pytest.skip("NumPy's OpenBLAS not found: nothing is folded")
    net = Network(3, [4], 2, dtype=np.float64, rng=1)
    update = fused_update(make_optimizer("momentum", net.num_params, np.float64), net, 0.1)
    before = net.theta.copy()
    X = np.array([[np.inf, 0.0, 1.0]])
    assert not math.isfinite(net.loss(X, np.array([0]), update=update))
    assert np.array_equal(net.theta, before, equal_nan=True)
    assert not np.isfinite(net.grads["W1"]).all()


def test_numpys_own_openblas_is_found_when_numpy_ships_one():
    """A NumPy wheel ships OpenBLAS in numpy.libs (or .dylibs): nncli must find it, or every run loses the BLAS
    updates and the fold without a word."""
    root = Path(np.__file__).parent
    if not [*root.parent.glob("numpy.libs/*openblas*"), *root.glob(".dylibs/*openblas*")] or os.environ.get(
        "NNCLI_NO_BLAS"
    ):
        pytest.skip("this NumPy ships no OpenBLAS of its own")
    assert blas.HAVE_GEMM


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_with_alpha_and_beta_matches_numpy(dtype, trans_a, update_path):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((13, 7) if trans_a else (7, 13)).astype(dtype)
    b, c = rng.standard_normal((13, 5)).astype(dtype), rng.standard_normal((7, 5)).astype(dtype)
    want = -0.3 * ((a.T if trans_a else a).astype(np.float64) @ b) + 0.9 * c
    blas.gemm(-0.3, a, b, 0.9, c, trans_a=trans_a)
    np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    with pytest.raises(ValueError, match="do not give"):
        blas.gemm(1.0, a, b, 0.0, np.empty((5, 5), dtype), trans_a=trans_a)


def test_blas_helpers_take_read_only_and_strided_arrays():
    """Read-only memory (a memory-mapped file) goes through the slower address lookup; a strided view through NumPy."""
    x = np.arange(8.0)
    x.flags.writeable = False
    y = np.ones(8)
    blas.axpy(2.0, x, y)
    np.testing.assert_array_equal(y, 1 + 2 * np.arange(8.0))
    z = np.ones(16)
    blas.axpy(1.0, np.arange(8.0), z[::2])
    np.testing.assert_array_equal(z[::2], 1 + np.arange(8.0))
    np.testing.assert_array_equal(z[1::2], 1)


def test_numpys_openblas_is_found_through_a_symlinked_environment(tmp_path):
    """/proc/self/maps lists resolved paths: a venv reached through a symlink (or a bind mount) must still find the
    library, or the same config trains with other roundings depending on how its path was spelled."""
    if not blas.HAVE_GEMM or sys.prefix == sys.base_prefix or not Path("/proc/self/maps").exists():
        pytest.skip("needs NumPy's own OpenBLAS, a virtual environment and /proc")
    link = tmp_path / "venv"
    link.symlink_to(sys.prefix, target_is_directory=True)
    python = link / Path(sys.executable).relative_to(sys.prefix)
    code = "import numpy, nncli.blas as b; print(numpy.__file__); print(b.HAVE_GEMM)"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    numpy_file, found = out.split()
    assert numpy_file.startswith(str(link)) and found == "True"
