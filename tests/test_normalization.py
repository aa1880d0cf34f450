"""Batch and layer normalization, proven like every other gate: the fast gates agree with the plain reference and
with numerical gradients at every batch size (1 and 2 included), evaluation mode makes a row's output its own, and a
training batch of one row is handled as documented (out = beta, dx = 0, running averages untouched).

float64 throughout unless a test says otherwise.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.gradcheck.numerical import check_layer, check_network
from nncli.gradcheck.suite import builtin_checks
from nncli.nn import reference
from nncli.nn.network import Network
from nncli.nn.normalization import NORMS, BatchNorm, LayerNorm, make_norm

AXIS = {"batchnorm": 0, "layernorm": 1}
BATCHES = [1, 2, 3, 16]
RTOL, ATOL = 1e-10, 1e-12
ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def assert_checks(results):
    for r in results:
        assert r.passed, f"{r.name}: {r.status}, error {r.max_rel_error:.2e}, {r.kinks} kinks"


def gate_and_inputs(name, n, seed=0, width=5):
    """A gate `name` over random gamma, beta (so every term of the gradient counts) and a batch x (n, width)."""
    rng = np.random.default_rng(seed + n)
    gamma, beta = rng.uniform(0.5, 2.0, width), rng.standard_normal(width)
    x = 3 * rng.standard_normal((n, width)) + rng.standard_normal(width)  # off-center, not unit scale
    return make_norm(name, gamma, beta), x, rng


def test_the_registry_holds_both_norms():
    assert set(NORMS) == {"batchnorm", "layernorm"} == set(AXIS)


@pytest.mark.parametrize("name", list(AXIS))
@pytest.mark.parametrize("n", BATCHES)
def test_gate_forward_and_backward_match_the_reference(name, n):
    gate, x, rng = gate_and_inputs(name, n)
    want, cache = reference.norm_forward(x, gate.gamma, gate.beta, AXIS[name], gate.eps)
    np.testing.assert_allclose(gate.forward(x.copy()), want, rtol=RTOL, atol=ATOL)
    dout = rng.standard_normal(want.shape)
    dx = gate.backward(dout.copy())
    want_dx, want_dgamma, want_dbeta = reference.norm_backward(dout, cache)
    np.testing.assert_allclose(dx, want_dx, rtol=RTOL, atol=ATOL, err_msg="dx")
    np.testing.assert_allclose(gate.dgamma, want_dgamma, rtol=RTOL, atol=ATOL, err_msg="dgamma")
    np.testing.assert_allclose(gate.dbeta, want_dbeta, rtol=RTOL, atol=ATOL, err_msg="dbeta")


@pytest.mark.parametrize("name", list(AXIS))
@pytest.mark.parametrize("n", BATCHES)
def test_gate_gradients_match_numerical_ones(name, n):
    """dx, dgamma and dbeta against centered differences of L = Σ(out · G), in training mode."""
    gate, x, rng = gate_and_inputs(name, n, seed=10)
    results = check_layer(name, gate, x, rng)
    assert [r.name for r in results] == [f"{name}: dx", f"{name}: dgamma", f"{name}: dbeta"]
    assert_checks(results)


@pytest.mark.parametrize("name", list(AXIS))
def test_gates_reuse_their_buffers_across_batch_sizes(name):
    """Batch sizes that grow and shrink (1 and 2 among them) give the reference's numbers every time."""
    gate, _, rng = gate_and_inputs(name, 1)
    for n in (5, 16, 1, 23, 2, 16):
        x = rng.standard_normal((n, 5))
        want, cache = reference.norm_forward(x, gate.gamma, gate.beta, AXIS[name], gate.eps)
        np.testing.assert_allclose(gate.forward(x), want, rtol=RTOL, atol=ATOL, err_msg=f"batch {n}")
        dout = rng.standard_normal(want.shape)
        want_dx, want_dgamma, _ = reference.norm_backward(dout, cache)
        np.testing.assert_allclose(gate.backward(dout), want_dx, rtol=RTOL, atol=ATOL, err_msg=f"dx, batch {n}")
        np.testing.assert_allclose(gate.dgamma, want_dgamma, rtol=RTOL, atol=ATOL, err_msg=f"dgamma, batch {n}")


def test_batchnorm_running_averages_follow_the_momentum_rule():
    """running = momentum·running + (1 − momentum)·batch statistic (variance divided by N), from mean 0 and var 1."""
    gate, _, rng = gate_and_inputs("batchnorm", 1)
    gate = make_norm("batchnorm", gate.gamma, gate.beta, momentum=0.8)
    mean, var = np.zeros(5), np.ones(5)
    for n in (7, 3, 12):
        x = rng.standard_normal((n, 5)) + 2
        gate.forward(x)
        mean, var = 0.8 * mean + 0.2 * x.mean(axis=0), 0.8 * var + 0.2 * x.var(axis=0)
    np.testing.assert_allclose(gate.running_mean, mean, rtol=RTOL)
    np.testing.assert_allclose(gate.running_var, var, rtol=RTOL)


def test_batchnorm_evaluation_uses_the_running_averages():
    gate, x, _ = gate_and_inputs("batchnorm", 16)
    gate.forward(x.copy())
    gate.train = False
    want = reference.batchnorm_eval(x, gate.gamma, gate.beta, gate.running_mean, gate.running_var, gate.eps)
    np.testing.assert_allclose(gate.forward(x.copy()), want, rtol=RTOL, atol=ATOL)


def test_a_one_row_training_batch_gives_beta_and_no_gradient_to_x():
    """Batch norm over one row: x̂ = 0, so out = beta and dx = 0 exactly, no NaN, and the running averages (which one
    row says nothing about) stay as they were; dbeta and dgamma are still Σ dout and Σ dout·x̂ = 0."""
    gate, x, rng = gate_and_inputs("batchnorm", 16)
    gate.forward(x)  # running averages away from their start
    running = gate.running_mean.copy(), gate.running_var.copy()
    row = 100 * rng.standard_normal((1, 5))
    out = gate.forward(row)
    np.testing.assert_array_equal(out, gate.beta[None, :])
    dout = rng.standard_normal((1, 5))
    dx = gate.backward(dout.copy())
    np.testing.assert_array_equal(dx, np.zeros((1, 5)))
    np.testing.assert_array_equal(gate.dbeta, dout[0])
    np.testing.assert_array_equal(gate.dgamma, np.zeros(5))
    np.testing.assert_array_equal(gate.running_mean, running[0])
    np.testing.assert_array_equal(gate.running_var, running[1])


def net(norm, hidden=(7, 6), dropout=0.0, seed=1, dtype=np.float64):
    return Network(5, list(hidden), 3, norm=norm, dropout=dropout, l2=0.01, dtype=dtype, rng=seed)


@pytest.mark.parametrize("norm", list(AXIS))
@pytest.mark.parametrize("n", [2, 3, 8])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_whole_nets_with_a_norm_pass_the_numerical_gradient_check(norm, n, dropout):
    """Every parameter (gamma and beta included) and the input of a three-layer net, in training mode, with
    fixed dropout masks; inputs chosen so no ReLU input sits at its kink."""
    rng = np.random.default_rng(20 + n)
    network = net(norm, dropout=dropout)
    for p in network.params.values():  # gamma away from 1, beta away from 0: every term of the gradient counts
        p += 0.2 * rng.standard_normal(p.shape)
    results = check_network(network, rng.standard_normal((n, 5)), rng.integers(3, size=n), rng=rng)
    assert {r.name for r in results} >= {"x", "gamma1", "beta1", "gamma2", "beta2"}
    assert_checks(results)


def test_a_one_row_batch_norm_puts_beta_on_the_relu_kink_and_the_check_says_so():
    """One training row: the ReLUs' inputs are beta = 0 exactly, so every ±h step of beta crosses the kink. The check
    counts those as kinks, "not checked", instead of reporting a false failure; everything else passes."""
    rng = np.random.default_rng(3)
    results = {r.name: r for r in check_network(net("batchnorm"), rng.standard_normal((1, 5)), [1], rng=rng)}
    for name in ("beta1", "beta2"):
        assert results[name].status == "not checked" and results[name].kinks == results[name].shape[0]
    assert all(r.passed for name, r in results.items() if not name.startswith("beta"))


@pytest.mark.parametrize("norm", list(AXIS))
def test_eval_output_of_one_row_is_its_output_inside_a_larger_batch(norm):
    rng = np.random.default_rng(4)
    network = net(norm)
    X, y = rng.standard_normal((32, 5)), rng.integers(3, size=32)
    for start in range(0, 32, 8):  # a few training steps: running averages away from their start
        network.loss(X[start : start + 8], y[start : start + 8])
    batch = network.predict_scores(X)
    for i in (0, 13, 31):
        np.testing.assert_allclose(network.predict_scores(X[i : i + 1])[0], batch[i], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(network.predict_scores(X[5:7]), batch[5:7], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("norm", list(AXIS))
def test_float32_nets_with_a_norm_agree_with_float64(norm):
    """The float32 path (what training runs in by default) computes the same function to float32 precision."""
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((9, 5)), rng.integers(3, size=9)
    nets = [net(norm, dtype=dtype) for dtype in (np.float32, np.float64)]
    nets[0].load_parameters(nets[1].params)
    losses = [n.loss(X, y) for n in nets]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for name in nets[1].grads:
        np.testing.assert_allclose(nets[0].grads[name], nets[1].grads[name], rtol=2e-3, atol=2e-5, err_msg=name)


def test_the_builtin_gradcheck_proves_each_norm_gate_and_nets_with_it():
    results = {r.name: r for r in builtin_checks()}
    for norm in NORMS:
        for grad in ("dx", "dgamma", "dbeta"):
            assert results[f"{norm}: {grad}"].passed
        for label, params in (("two-layer net", ["gamma1", "beta1"]), ("three-layer net", ["gamma2", "beta2"])):
            for name in ("x", "W1", "b1", *params):
                assert results[f"{label}, {norm}: {name}"].passed, f"{label}, {norm}: {name}"


@pytest.mark.parametrize("gate", [BatchNorm, LayerNorm])
def test_the_builtin_gradcheck_fails_a_wrong_norm_backward(monkeypatch, gate):
    """A backward that forgets the path through the statistics (dx = γ·dout/σ) fails the gate and the nets with it."""

    def forgetful(self, dout):
        self.dbeta[...], self.dgamma[...] = dout.sum(axis=0), (dout * self.xhat).sum(axis=0)
        return dout * self.gamma * self.inv_std

    monkeypatch.setattr(gate, "backward", forgetful)
    failed = {r.name for r in builtin_checks() if r.status == "FAIL"}
    assert f"{gate.name}: dx" in failed and f"two-layer net, {gate.name}: W1" in failed
    assert not any(name.startswith(("affine", "relu", "two-layer net: ")) for name in failed)


@pytest.mark.parametrize("norm", list(NORMS))
def test_gradcheck_of_a_config_with_each_norm(norm):
    result = runner.invoke(app, ["gradcheck", str(ROOT / "configs/spiral-3layer.yaml"), f"model.norm={norm}", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["passed"]
    assert {c["name"] for c in report["checks"]} >= {"x", "W1", "gamma1", "beta1", "gamma2", "beta2"}


@pytest.mark.parametrize(
    "override,fragments",
    [
        ("model.norm=bn", ["model.norm", "'bn'", "none, batchnorm, layernorm"]),
        ("model.norm_momentum=1", ["model.norm_momentum", "< 1", "got 1"]),
        ("model.norm_momentum=-0.1", ["model.norm_momentum", ">= 0", "-0.1"]),
        ("model.norm_eps=0", ["model.norm_eps", "> 0", "got 0"]),
    ],
)
def test_a_bad_norm_key_is_refused_naming_it(tmp_path, override, fragments):
    result = runner.invoke(
        app, ["train", str(ROOT / "configs/spiral-2layer.yaml"), override, "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output
    assert not (tmp_path / "r").exists()


def test_the_json_schema_lists_the_norms_and_the_bounds_of_their_keys():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    model = json.loads(result.output)["definitions"]["ModelConfig"]["properties"]
    assert model["norm"]["enum"] == ["none", "batchnorm", "layernorm"] and model["norm"]["default"] == "none"
    assert model["norm_momentum"]["minimum"] == 0 and model["norm_momentum"]["exclusiveMaximum"] == 1
    assert model["norm_eps"]["exclusiveMinimum"] == 0
    shipped = json.loads((ROOT / "configs/schema.json").read_text())["definitions"]["ModelConfig"]["properties"]
    assert {k: shipped[k] for k in ("norm", "norm_momentum", "norm_eps")} == {
        k: model[k] for k in ("norm", "norm_momentum", "norm_eps")
    }


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_backprop_of_a_batchnorm_net_on_two_rows_passes_its_numerical_check(tmp_path, seed):
    """Over two rows a batch norm curves sharply where the rows' values nearly agree: the check's h = 1e-5 step then
    has a truncation error of up to 1e-3 (these seeds), which the smaller steps it retries with remove."""
    config = tmp_path / "bn.yaml"
    config.write_text(
        "data: {source: spiral, classes: 3, samples_per_class: 100, noise: 0.2, val_fraction: 0.2}\n"
        "model: {hidden: [100, 50], norm: batchnorm}\n"
    )
    result = runner.invoke(app, ["backprop", str(config), "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
