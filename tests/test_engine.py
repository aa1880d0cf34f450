"""The numerical core checked the way the course checks it: numerical gradients, worked examples, sanity checks."""

import ast
import inspect
import math
import textwrap
import warnings
import zlib

import numpy as np
import pytest

from nncli.backprop import gates
from nncli.backprop.gates import Add, Multiply
from nncli.gradcheck import numerical as gradient_check
from nncli.gradcheck.numerical import check_layer, check_network
from nncli.gradcheck.suite import builtin_checks, check_network_avoiding_kinks
from nncli.nn import activations, layers, losses, network, regularization
from nncli.nn.activations import ReLU, Sigmoid
from nncli.nn.layers import Affine, Dropout
from nncli.nn.losses import softmax, softmax_loss, svm_loss
from nncli.nn.network import Network
from nncli.optim.clipping import clip_by_global_norm
from nncli.optim.rules import make_optimizer
from nncli.optim.schedules import learning_rate

ACTIVATIONS = ["relu", "leaky_relu", "sigmoid", "tanh", "elu"]


@pytest.fixture(scope="module")
def builtin_results():
    return builtin_checks(seed=0)


def test_every_builtin_gate_loss_and_regularizer_matches_numerical_gradient(builtin_results):
    single = [r for r in builtin_results if "net" not in r.name]
    names = {r.name.split(":")[0] for r in single}
    assert names == {
        "affine",
        "relu",
        "leaky_relu",
        "elu",
        "sigmoid",
        "tanh",
        "dropout",
        "batchnorm",
        "layernorm",
        "softmax_loss",
        "svm_loss",
        "l2_loss",
        "l1_loss",
        "huber_loss",
        "logistic_loss",
        "l2",
        "l1",
        "l2+l1",
    }
    for r in single:
        assert r.checked > 0, r.name
        assert r.max_rel_error < 1e-7, (r.name, r.max_rel_error)


def test_builtin_nets_pass_including_input_gradient(builtin_results):
    nets = [r for r in builtin_results if "net" in r.name]
    assert {r.name for r in nets} >= {"two-layer net: x", "three-layer net: W3"}
    assert all(r.passed and r.checked > 0 for r in nets)


@pytest.mark.parametrize("hidden", [[6], [6, 5]], ids=["two-layer", "three-layer"])
@pytest.mark.parametrize("loss", ["softmax", "svm"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("l2,l1", [(0.05, 0.0), (0.0, 0.05), (0.05, 0.05)], ids=["L2", "L1", "L2+L1"])
def test_network_loss_gradient_matches_numerical(hidden, loss, activation, l2, l1):
    rng = np.random.default_rng(zlib.crc32(repr((hidden, loss, activation, l2, l1)).encode()))

    def make_net():
        return Network(
            4,
            hidden,
            3,
            activation=activation,
            loss=loss,
            l2=l2,
            l1=l1,
            init="xavier",
            dtype=np.float64,
            rng=rng.integers(2**32),
        )

    results = check_network_avoiding_kinks(make_net, 4, 3, rng, samples=6)
    for r in results:
        assert r.checked + r.kinks == min(r.shape and math.prod(r.shape), 200)
        assert r.checked > 0
        assert r.max_rel_error < 1e-6, (r.name, r.max_rel_error)


def test_network_with_dropout_gradient_uses_fixed_masks():
    net = Network(4, [8, 6], 3, dropout=0.3, dtype=np.float64, rng=3, activation="tanh")
    rng = np.random.default_rng(0)
    results = check_network(net, rng.standard_normal((5, 4)), rng.integers(3, size=5))
    assert all(r.max_rel_error < 1e-6 for r in results), [(r.name, r.max_rel_error) for r in results]


def test_kinks_are_counted_not_failed():
    x = np.array([[1e-6, -1e-6, 0.5, -0.5]])  # the first two straddle the ReLU kink within ±h
    results = check_layer("relu", ReLU(), x, np.random.default_rng(0))
    assert results[0].kinks == 2 and results[0].checked == 2 and results[0].passed


def test_a_wrong_backward_fails_the_check():
    class BadSigmoid(Sigmoid):
        def backward(self, dout):
            return dout * self.out  # forgets the (1 − σ) factor

    result = check_layer(
        "bad", BadSigmoid(), np.random.default_rng(0).standard_normal((3, 4)), np.random.default_rng(1)
    )
    assert not result[0].passed and result[0].max_rel_error > 1e-2


def test_a_tiny_gradient_reports_the_error_it_is_judged_by():
    # df/dx = 1e-9 on f ≈ 1: the difference quotient's rounding noise (~1e-11) is a large part of the gradient, so the
    # bare |a − n| / max(|a|, |n|) is far above the tolerance; the floor s = noise / tolerance judges it by |a − n|.
    x = np.array([0.3])
    r = gradient_check.check_gradient("tiny", lambda: 1.0 + 1e-9 * x[0], x, np.array([1e-9]), tolerance=1e-6)
    numeric = ((1.0 + 1e-9 * (0.3 + 1e-5)) - (1.0 + 1e-9 * (0.3 - 1e-5))) / 2e-5
    assert gradient_check.rel_error(1e-9, numeric) > 1e-6  # without the floor it would "fail" on rounding alone
    assert r.passed and 0 < r.max_rel_error < r.tolerance  # the column shows a real number, not a rounded-off 0
    wrong = gradient_check.check_gradient("wrong", lambda: 1.0 + 1e-9 * x[0], x, np.array([5e-9]), tolerance=1e-6)
    assert not wrong.passed and wrong.max_rel_error >= wrong.tolerance  # 4e-9 off is far above the noise


@pytest.mark.parametrize("off", [3.0, 1.0])
def test_reported_error_is_what_decides_pass_or_fail(off):
    # f = 0.5·x², df/dx = x, with the analytic gradient off by a relative 3e-6 (off 3) or 1e-6 (off 1).
    x = np.array([2.0])
    r = gradient_check.check_gradient(
        "x", lambda: 0.5 * x[0] ** 2, x, np.array([2.0 * (1 + off * 1e-6)]), tolerance=2e-6
    )
    assert r.max_rel_error == pytest.approx(off * 1e-6, rel=1e-3)
    assert r.passed == (r.max_rel_error < r.tolerance) == (off < 2)


def test_a_gradient_whose_every_coordinate_is_a_kink_is_not_checked_and_not_passed():
    x = np.array([[1e-6, -1e-6, 2e-6]])  # every ReLU input within ±h of 0
    r = check_layer("relu", ReLU(), x, np.random.default_rng(0))[0]
    assert r.checked == 0 and r.kinks == 3
    assert r.status == "not checked" and not r.passed and r.as_dict()["status"] == "not checked"


def test_record_keeps_an_in_place_activations_input():
    relu = ReLU(inplace=True)
    x = np.array([[-2.0, 1.0], [3.0, -0.5]])
    with gates.record([relu]) as tape:
        relu.forward(x)
    (call,) = tape.of(relu, "forward")
    assert call.value.tolist() == [[-2.0, 1.0], [3.0, -0.5]]  # what went in, negatives and all
    assert call.result.tolist() == [[0.0, 1.0], [3.0, 0.0]]


def test_rel_error_definition():
    assert gradient_check.rel_error(0.0, 0.0) == 0
    assert gradient_check.rel_error(1.0, 0.5) == pytest.approx(0.5)
    assert gradient_check.rel_error(-2.0, 2.0) == pytest.approx(2.0)


def test_large_tensors_are_sampled_reproducibly():
    W = np.random.default_rng(0).standard_normal((30, 20))
    r = gradient_check.check_regularizer("l2", W, l2=1.0)[0]
    assert r.checked == 200 and r.passed


# The worked examples of the backprop notes, built from the engine's own gates.


def test_add_multiply_circuit():
    x, y, z = -2.0, 5.0, -4.0
    add, mul = Add(), Multiply()
    q = add.forward(x, y)
    f = mul.forward(q, z)
    dq, dz = mul.backward(1.0)
    dx, dy = add.backward(dq)
    assert (q, f) == (3.0, -12.0)
    assert (dx, dy, dz) == (-4.0, -4.0, 3.0)


def test_gradients_add_up_at_a_fork():
    # f = x·x through a multiply gate fed twice by the same wire: df/dx = 2x
    mul = Multiply()
    mul.forward(3.0, 3.0)
    da, db = mul.backward(1.0)
    assert da + db == 6.0


def test_max_gate_routes_gradient_to_larger_input():
    g = gates.Max()
    assert g.forward(2.0, -1.0) == 2.0
    assert g.backward(5.0) == (5.0, 0.0)


def test_sigmoid_neuron():
    affine = Affine(np.array([[2.0], [-3.0]]), np.array([-3.0]))
    sigmoid = Sigmoid()
    x = np.array([[-1.0, -2.0]])
    out = sigmoid.forward(affine.forward(x))
    dx = affine.backward(sigmoid.backward(np.ones((1, 1))))
    assert out[0, 0] == pytest.approx(0.7311, abs=1e-4)
    dw = [affine.dW[0, 0], affine.dW[1, 0], affine.db[0]]
    assert dw == pytest.approx([-0.1966, -0.3932, 0.1966], abs=1e-4)
    assert dx[0] == pytest.approx([0.3932, -0.5898], abs=1e-4)


# Layers.


def test_affine_shapes_and_formula():
    rng = np.random.default_rng(0)
    W, b, x = rng.standard_normal((3, 2)), rng.standard_normal(2), rng.standard_normal((4, 3))
    layer = Affine(W, b)
    assert np.allclose(layer.forward(x), x @ W + b)
    dout = rng.standard_normal((4, 2))
    dx = layer.backward(dout)
    assert np.allclose(dx, dout @ W.T) and np.allclose(layer.dW, x.T @ dout) and np.allclose(layer.db, dout.sum(0))


def test_sigmoid_is_stable_for_huge_inputs():
    x = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = Sigmoid().forward(x)
    assert out[0, 0] == 0.0 and out[0, 2] == 0.5 and out[0, -1] == 1.0


def test_elu_and_leaky_relu_values():
    x = np.array([[-2.0, 3.0]])
    assert activations.ELU(1.0).forward(x.copy()) == pytest.approx(np.array([[math.expm1(-2.0), 3.0]]))
    assert activations.LeakyReLU(0.01).forward(x.copy()) == pytest.approx(np.array([[-0.02, 3.0]]))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        activations.ELU().forward(np.array([[1e4, -1e4]]))


def test_dropout_inverted_scaling_and_eval_identity():
    x = np.ones((200, 500))
    drop = Dropout(0.3, np.random.default_rng(0))
    out = drop.forward(x)
    kept = out != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    assert np.allclose(out[kept], 1 / 0.7)
    assert abs(out.mean() - 1.0) < 0.01
    drop.train = False
    assert drop.forward(x) is x


def test_dropout_masks_come_from_the_seeded_generator():
    x = np.ones((5, 7))
    a = Dropout(0.5, np.random.default_rng(42)).forward(x).copy()
    b = Dropout(0.5, np.random.default_rng(42)).forward(x).copy()
    assert np.array_equal(a, b)


# Losses.


def test_softmax_loss_is_stable_and_matches_definition():
    scores = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    y = np.array([0, 2])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, _ = softmax_loss(scores.copy(), y)
    expected = (0.0 + (math.log(math.exp(1) + math.exp(2) + math.exp(3)) - 3)) / 2
    assert loss == pytest.approx(expected)
    assert softmax(scores).sum(axis=1) == pytest.approx([1, 1])


def test_svm_loss_matches_definition():
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])
    loss, _ = svm_loss(scores, y)
    assert loss == pytest.approx((2.9 + 0 + 12.9) / 3)  # the course's three-example numbers


# Network.


def test_parameter_names_and_shapes():
    net = Network(2, [100, 50], 3, rng=0)
    assert [(n, s) for n, s, _ in net.layer_shapes()] == [
        ("W1", (2, 100)),
        ("b1", (100,)),
        ("W2", (100, 50)),
        ("b2", (50,)),
        ("W3", (50, 3)),
        ("b3", (3,)),
    ]
    assert net.num_params == 2 * 100 + 100 + 100 * 50 + 50 + 50 * 3 + 3
    assert all(np.shares_memory(p, net.theta) for p in net.params.values())
    assert not net.params["b2"].any()


def test_bias_init_sets_the_hidden_biases_and_leaves_the_scores_at_zero():
    net = Network(2, [4, 3], 5, bias_init=0.01, rng=0)
    assert np.all(net.params["b1"] == np.float32(0.01)) and np.all(net.params["b2"] == np.float32(0.01))
    assert not net.params["b3"].any()


def test_linear_classifier_scores():
    net = Network(4, [], 3, rng=0, dtype=np.float64)
    X = np.random.default_rng(1).standard_normal((5, 4))
    assert np.allclose(net.forward(X), X @ net.params["W1"] + net.params["b1"])


@pytest.mark.parametrize(
    "init,expected", [("he", math.sqrt(2 / 400)), ("xavier", math.sqrt(2 / 700)), ("normal", 0.05)]
)
def test_init_scales(init, expected):
    net = Network(400, [300], 2, init=init, init_std=0.05, rng=0)
    assert net.params["W1"].std() == pytest.approx(expected, rel=0.02)


def test_same_seed_same_weights_and_global_random_untouched():
    state = np.random.get_state()[1].copy()
    a, b, c = Network(3, [5], 2, rng=7), Network(3, [5], 2, rng=7), Network(3, [5], 2, rng=8)
    assert np.array_equal(a.theta, b.theta) and not np.array_equal(a.theta, c.theta)
    assert np.array_equal(np.random.get_state()[1], state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_dtypes_end_to_end(dtype):
    net = Network(3, [8], 2, dtype=dtype, rng=0, l2=1e-3)
    X = np.random.default_rng(0).standard_normal((10, 3))
    y = np.arange(10) % 2
    loss = net.loss(X, y)
    assert math.isfinite(loss)
    assert net.theta.dtype == dtype and net.grad.dtype == dtype and net.scores.dtype == dtype


def test_regularization_is_on_weights_only_and_in_the_loss():
    net = Network(3, [4], 2, l2=0.5, l1=0.25, rng=0, dtype=np.float64)
    net.params["b1"][...] = 10.0
    W = np.concatenate([net.params["W1"].ravel(), net.params["W2"].ravel()])
    assert net.regularization_loss() == pytest.approx(0.5 * 0.5 * (W**2).sum() + 0.25 * np.abs(W).sum())
    X, y = np.zeros((2, 3)), np.array([0, 1])
    total = net.loss(X, y)
    assert total == pytest.approx(net.data_loss + net.regularization_loss())
    assert regularization.regularization_loss(W, l2=0.5, l1=0.25) == pytest.approx(net.regularization_loss())


@pytest.mark.parametrize("loss,expected", [("softmax", math.log(10)), ("svm", 9.0)])
def test_initial_loss_sanity(loss, expected):
    rng = np.random.default_rng(0)
    net = Network(50, [40], 10, init="normal", init_std=1e-3, loss=loss, rng=0)
    X = rng.standard_normal((200, 50))
    y = rng.integers(10, size=200)
    net.forward_loss(X, y)
    assert net.data_loss == pytest.approx(expected, rel=0.01)


def test_three_layer_net_overfits_fifty_samples():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 20)), rng.integers(5, size=50)
    net = Network(20, [100, 100], 5, rng=1, dtype=np.float64)
    opt = make_optimizer("adam", net.num_params, np.float64)
    for _ in range(300):
        net.loss(X, y)
        opt.step(net.theta, net.grad, 1e-3)
    assert (net.predict(X) == y).mean() == 1.0


def spiral(rng, classes=3, k=100, noise=0.2):
    X, y = np.zeros((classes * k, 2)), np.repeat(np.arange(classes), k)
    r = np.tile(np.linspace(0.0, 1, k), classes)
    t = (np.linspace(0, 4, k)[None, :] + 4 * np.arange(classes)[:, None]).ravel() + rng.standard_normal(
        classes * k
    ) * noise
    X[:, 0], X[:, 1] = r * np.sin(t), r * np.cos(t)
    return X, y


@pytest.mark.parametrize(
    "hidden,bound", [([100], lambda acc: acc >= 0.98), ([], lambda acc: acc <= 0.60)], ids=["two-layer", "linear"]
)
def test_spiral_case_study(hidden, bound):
    X, y = spiral(np.random.default_rng(0))
    net = Network(2, hidden, 3, l2=1e-3, init="normal", init_std=0.01, rng=0, dtype=np.float64)
    opt = make_optimizer("sgd", net.num_params, np.float64)
    for _ in range(10_000):
        net.loss(X, y)
        opt.step(net.theta, net.grad, 1.0)
    assert bound((net.predict(X) == y).mean())


# Update rules and schedules, against hand-computed values over two steps.

W0, G1, G2 = 1.0, 0.5, -0.25


def two_steps(name, lr=0.1, **hyper):
    w = np.array([W0])
    opt = make_optimizer(name, 1, np.float64, **hyper)
    opt.step(w, np.array([G1]), lr)
    w1 = w[0]
    opt.step(w, np.array([G2]), lr)
    return w1, w[0]


def test_sgd():
    assert two_steps("sgd") == pytest.approx((0.95, 0.975))


def test_momentum():
    # v1 = −0.05, w1 = 0.95; v2 = 0.9·(−0.05) + 0.025 = −0.02, w2 = 0.93
    assert two_steps("momentum", momentum=0.9) == pytest.approx((0.95, 0.93))


def test_nesterov():
    # v1 = −0.05, w1 = 1 + 0.9·(−0.05) − 0.05 = 0.905; v2 = −0.02, w2 = 0.905 + 0.9·(−0.02) + 0.025 = 0.912
    assert two_steps("nesterov", momentum=0.9) == pytest.approx((0.905, 0.912))


def test_rmsprop():
    c1 = 0.01 * 0.25
    w1 = 1 - 0.1 * 0.5 / (math.sqrt(c1) + 1e-8)
    c2 = 0.99 * c1 + 0.01 * 0.0625
    w2 = w1 + 0.1 * 0.25 / (math.sqrt(c2) + 1e-8)
    assert two_steps("rmsprop", decay_rate=0.99, eps=1e-8) == pytest.approx((w1, w2))


def test_adam():
    m1, v1 = 0.1 * 0.5, 0.001 * 0.25
    w1 = 1 - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + 1e-8)
    m2, v2 = 0.9 * m1 + 0.1 * -0.25, 0.999 * v1 + 0.001 * 0.0625
    w2 = w1 - 0.1 * (m2 / (1 - 0.81)) / (math.sqrt(v2 / (1 - 0.999**2)) + 1e-8)
    assert two_steps("adam", beta1=0.9, beta2=0.999, eps=1e-8) == pytest.approx((w1, w2))


def test_optimizer_state_round_trip():
    opt = make_optimizer("adam", 3, np.float64)
    w = np.ones(3)
    opt.step(w, np.array([1.0, 2.0, 3.0]), 0.1)
    arrays, counters = opt.state()
    other = make_optimizer("adam", 3, np.float64)
    other.load_state({k: v.copy() for k, v in arrays.items()}, counters)
    w2 = w.copy()
    opt.step(w, np.array([0.5, 0.5, 0.5]), 0.1)
    other.step(w2, np.array([0.5, 0.5, 0.5]), 0.1)
    assert np.array_equal(w, w2)


@pytest.mark.parametrize(
    "name,kw,expected",
    [
        ("constant", {}, [1.0, 1.0, 1.0]),
        ("step", {"every": 2, "gamma": 0.5}, [1.0, 1.0, 0.5]),
        ("exponential", {"gamma": 0.9}, [1.0, 0.9, 0.81]),
        ("cosine", {"min_lr": 0.1}, [1.0, 0.1 + 0.9 * (1 + math.sqrt(0.5)) / 2, 0.55]),
    ],
)
def test_schedules(name, kw, expected):
    assert [learning_rate(1.0, e, 4, name, **kw) for e in range(3)] == pytest.approx(expected)


def test_clip_by_global_norm():
    g = np.array([3.0, 4.0])
    assert clip_by_global_norm(g, 1.0) == 5.0
    assert g == pytest.approx([0.6, 0.8])
    g = np.array([0.3, 0.4])
    clip_by_global_norm(g, 1.0)
    assert g == pytest.approx([0.3, 0.4])


# Vectorization: no Python loop over samples or coordinates in any forward, backward or loss.


def test_no_python_loops_in_forward_backward_or_loss():
    functions = [
        losses.softmax,
        losses.softmax_loss,
        losses.svm_loss,
        losses.svm_margins,
        regularization.regularization_loss,
        regularization.add_regularization_grad,
    ]
    for module in (layers, activations, gates):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            functions += [getattr(cls, m) for m in ("forward", "backward") if m in cls.__dict__]
    assert len(functions) > 15
    for func in functions:
        source = inspect.getsource(func)
        loops = [
            n
            for n in ast.walk(ast.parse(textwrap.dedent(source)))
            if isinstance(n, (ast.For, ast.While, ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.SetComp))
        ]
        assert not loops, f"{func.__qualname__} loops in Python"


def test_network_loops_only_over_layers():
    for method in (network.Network.forward, network.Network.backward):
        tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
        for node in ast.walk(tree):
            if isinstance(node, ast.For):
                assert "layers" in ast.unparse(node.iter), ast.unparse(node.iter)
