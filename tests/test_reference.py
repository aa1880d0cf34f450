"""The reference math is itself right: every backward in `nncli.nn.reference` agrees with centered differences.

float64 throughout; inputs of the kinked gates (ReLU family, L1) are kept away from 0 so no ±h step crosses a kink.
"""

import numpy as np
import pytest

from nncli.gradcheck.numerical import NETWORK_TOLERANCE, away_from_zero, check_gradient
from nncli.gradcheck.suite import targets
from nncli.nn import reference
from nncli.nn.losses import LOSSES
from nncli.optim import reference as optim_reference

SLOPE, ALPHA = 0.05, 0.7


def assert_checks(results):
    for r in results:
        assert r.passed and r.kinks == 0, f"{r.name}: {r.status}, error {r.max_rel_error:.2e}, {r.kinks} kinks"


def check_layer(name, forward, backward, inputs, rng):
    """Check every gradient backward returns on L = Σ(out · G) for a random upstream G, one input at a time."""
    out, cache = forward(*inputs)
    upstream = rng.standard_normal(out.shape)
    grads = backward(upstream, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)

    def f():
        return float(np.sum(forward(*inputs)[0] * upstream))

    return [check_gradient(f"{name}: d{i}", f, x, g) for i, (x, g) in enumerate(zip(inputs, grads))]


def test_affine_gradients_dx_dw_db():
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3)
    results = check_layer("affine", reference.affine_forward, reference.affine_backward, inputs, rng)
    assert len(results) == 3
    assert_checks(results)


@pytest.mark.parametrize(
    "name,keywords",
    [("relu", {}), ("leaky_relu", {"negative_slope": SLOPE}), ("sigmoid", {}), ("tanh", {}), ("elu", {"alpha": ALPHA})],
)
def test_activation_gradients(name, keywords):
    rng = np.random.default_rng(1)
    forward, backward = reference.ACTIVATIONS[name]
    x = away_from_zero(rng, (4, 5))
    assert_checks(check_layer(name, lambda x: forward(x, **keywords), backward, (x,), rng))


def test_dropout_gradient_with_a_given_mask():
    rng = np.random.default_rng(2)
    p = 0.4
    mask = (rng.random((4, 5)) >= p) / (1 - p)
    x = rng.standard_normal((4, 5))
    assert_checks(
        check_layer("dropout", lambda x: reference.dropout_forward(x, mask), reference.dropout_backward, (x,), rng)
    )


@pytest.mark.parametrize("loss", list(reference.LOSSES))
def test_loss_gradients(loss):
    rng = np.random.default_rng(3)
    scores, y = rng.standard_normal((6, 4)), targets(LOSSES[loss].task, rng, 6, 4)
    loss_fn = reference.LOSSES[loss]
    _, dscores = loss_fn(scores, y)
    assert_checks([check_gradient(f"{loss}: dscores", lambda: loss_fn(scores, y)[0], scores, dscores)])


@pytest.mark.parametrize("penalty", [reference.l2_regularization, reference.l1_regularization])
def test_regularization_gradients(penalty):
    rng = np.random.default_rng(4)
    W = away_from_zero(rng, (5, 3))
    _, dW = penalty(W, 0.1)
    assert_checks([check_gradient(f"{penalty.__name__}: dW", lambda: penalty(W, 0.1)[0], W, dW)])


@pytest.mark.parametrize("activation", list(reference.ACTIVATIONS))
@pytest.mark.parametrize("loss", list(reference.LOSSES))
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_net_loss_gradients_on_every_parameter(activation, loss, dropout):
    """A three-layer net with L2, L1 and (fixed) dropout masks: every W and b against numerical gradients."""
    rng = np.random.default_rng(5)
    sizes = [6, 7, 5, 4]
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = away_from_zero(rng, (fan_in, fan_out))
        params[f"b{i}"] = 0.1 * rng.standard_normal(fan_out)
    X, y = rng.standard_normal((9, 6)), targets(LOSSES[loss].task, rng, 9, 4)
    masks = [(rng.random((9, h)) >= dropout) / (1 - dropout) for h in sizes[1:-1]] if dropout else None
    keywords = dict(activation=activation, loss=loss, l2=0.03, l1=0.02, masks=masks, negative_slope=SLOPE, alpha=ALPHA)
    _, grads = reference.net_loss(params, X, y, **keywords)
    assert set(grads) == set(params)

    def f():
        return reference.net_loss(params, X, y, **keywords)[0]

    assert_checks([check_gradient(name, f, params[name], grads[name], tolerance=NETWORK_TOLERANCE) for name in params])


def test_net_loss_adds_the_penalties_of_every_weight_and_no_bias():
    rng = np.random.default_rng(6)
    params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4)}
    params |= {"W2": rng.standard_normal((4, 2)), "b2": rng.standard_normal(2)}
    X, y = rng.standard_normal((5, 3)), rng.integers(2, size=5)
    plain, _ = reference.net_loss(params, X, y)
    total, _ = reference.net_loss(params, X, y, l2=0.1, l1=0.2)
    weights = [params["W1"], params["W2"]]
    penalty = sum(0.05 * (W**2).sum() + 0.2 * np.abs(W).sum() for W in weights)
    assert total == pytest.approx(plain + penalty, rel=1e-12)


def test_the_initial_softmax_loss_is_ln_c():
    """With all-zero scores every class has probability 1/C, so the loss is ln C."""
    assert reference.softmax_loss(np.zeros((8, 10)), np.arange(8))[0] == pytest.approx(np.log(10), rel=1e-12)


def test_update_rules_keep_their_state_in_config():
    """Two steps from one config equal the lecture's formulas by hand; the defaults are cs231n's."""
    w, dw = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    w1, config = optim_reference.sgd_momentum(w, dw)
    w2, config = optim_reference.sgd_momentum(w1, dw, config)
    v1 = -1e-2 * dw
    v2 = 0.9 * v1 - 1e-2 * dw
    np.testing.assert_allclose(w2, w + v1 + v2, rtol=1e-15)
    np.testing.assert_allclose(config["v"], v2, rtol=1e-15)
    _, config = optim_reference.adam(w, dw)
    assert config["t"] == 1 and config["learning_rate"] == 1e-3
    optim_reference.sgd(w, dw)
    np.testing.assert_array_equal(w, [1.0, -2.0])  # every rule returns a new w and leaves its input alone


@pytest.mark.parametrize("axis", [0, 1], ids=["batchnorm", "layernorm"])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_norm_staged_backward_matches_numerical_gradients(axis, n):
    """The staged graph of batch norm (axis 0) and layer norm (axis 1): dx, dgamma and dbeta, batches of 1 and 2 too."""
    rng = np.random.default_rng(7 + n)
    x = 3 * rng.standard_normal((n, 5)) + rng.standard_normal(5)
    gamma, beta = rng.uniform(0.5, 2.0, 5), rng.standard_normal(5)
    results = check_layer(
        "norm", lambda x, g, b: reference.norm_forward(x, g, b, axis), reference.norm_backward, (x, gamma, beta), rng
    )
    assert len(results) == 3
    assert_checks(results)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_net_loss_with_a_norm_matches_numerical_gradients(norm, activation, dropout):
    """A three-layer net with a norm after each hidden affine: every W, b, gamma and beta (penalties on W only)."""
    rng = np.random.default_rng(8)
    sizes = [6, 7, 5, 4]
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = away_from_zero(rng, (fan_in, fan_out))
        params[f"b{i}"] = 0.1 * rng.standard_normal(fan_out)
    for i, width in enumerate(sizes[1:-1], start=1):
        params[f"gamma{i}"], params[f"beta{i}"] = rng.uniform(0.5, 2.0, width), 0.3 * rng.standard_normal(width)
    X, y = rng.standard_normal((9, 6)), rng.integers(4, size=9)
    masks = [(rng.random((9, h)) >= dropout) / (1 - dropout) for h in sizes[1:-1]] if dropout else None
    keywords = dict(activation=activation, l2=0.03, l1=0.02, masks=masks, norm=norm)
    _, grads = reference.net_loss(params, X, y, **keywords)
    assert set(grads) == set(params)

    def f():
        return reference.net_loss(params, X, y, **keywords)[0]

    assert_checks([check_gradient(name, f, params[name], grads[name], tolerance=NETWORK_TOLERANCE) for name in params])
