"""One registry per concept: adding an activation is one class, and every part of nncli then knows it."""

import inspect

import numpy as np
import pytest

from nncli.backprop.graph import network_graph
from nncli.backprop.trace import trace
from nncli.config import ModelConfig, OptimizerConfig, config_from_dict, json_schema
from nncli.gradcheck.suite import builtin_checks
from nncli.nn.activations import ACTIVATIONS, activation
from nncli.nn.activations import hyperparameters as activation_keys
from nncli.nn.layers import Gate
from nncli.nn.network import Network
from nncli.optim.rules import OPTIMIZERS, hyperparameters, make_optimizer
from nncli.optim.schedules import SCHEDULES
from nncli.training.diagnostics import Diagnostics


class Softsign(Gate):
    """out = x / (1 + |x|); dx = dout / (1 + |x|)². Saturates towards ±1, like tanh."""

    name = "softsign"
    health = "saturated"
    rule = "softsign: dx = dout / (1 + |x|)²"

    def forward(self, x):
        self.x = x.copy()
        self.out = x / (1 + np.abs(x))
        return self.out

    def backward(self, dout):
        return dout / (1 + np.abs(self.x)) ** 2

    @staticmethod
    def saturated(out):
        return np.abs(out) > 0.99


@pytest.fixture
def softsign():
    activation(Softsign)
    yield "softsign"
    del ACTIVATIONS["softsign"]


def test_a_registered_activation_is_accepted_by_the_config_and_its_schema(softsign):
    config = config_from_dict({"data": {"source": "spiral"}, "model": {"activation": softsign}})
    assert config.model.activation == softsign
    schema = json_schema()["definitions"]["ModelConfig"]["properties"]["activation"]
    assert softsign in schema["enum"]


def test_an_unregistered_activation_is_refused_with_the_registered_ones(softsign):
    with pytest.raises(Exception) as raised:
        config_from_dict({"data": {"source": "spiral"}, "model": {"activation": "softplus"}})
    assert "model.activation: 'softplus' is not one of relu, leaky_relu, sigmoid, tanh, elu, softsign" in str(
        raised.value
    )


def test_a_registered_activation_is_gradchecked_by_the_builtin_suite(softsign):
    checks = [r for r in builtin_checks() if r.name.startswith("softsign:")]
    assert [r.name for r in checks] == ["softsign: dx"]
    assert all(r.passed for r in checks)


def test_a_registered_activation_is_traced_with_its_rule_and_drawn_in_the_graph(softsign):
    net = Network(2, [4], 3, activation=softsign, dtype=np.float64, rng=0)
    rng = np.random.default_rng(0)
    result = trace(net, rng.standard_normal((3, 2)), rng.integers(3, size=3))
    assert any(step.rule == Softsign.rule for step in result.steps)
    assert all(check.passed for check in result.checks)
    assert "softsign" in network_graph(net).chain()


def test_a_registered_activation_is_diagnosed(softsign):
    net = Network(2, [50], 3, activation=softsign, init="normal", init_std=1e4, dtype=np.float64, rng=0)
    diagnostics = Diagnostics(net)
    X = np.random.default_rng(0).standard_normal((64, 2))
    net.forward(X)
    diagnostics.after_forward()
    layers, warnings = diagnostics.end_epoch({"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5})
    assert layers["W1"]["saturated_fraction"] > 0.5
    assert any("units are saturated" in w for w in warnings)


def test_update_rules_refuse_hyperparameters_they_do_not_take():
    with pytest.raises(ValueError, match="sgd takes no hyperparameter 'lerning_rate'; it takes none"):
        make_optimizer("sgd", 10, lerning_rate=3)
    with pytest.raises(ValueError, match="adam takes no hyperparameter 'momentum'; it takes beta1, beta2, eps"):
        make_optimizer("adam", 10, momentum=0.9)
    assert make_optimizer("momentum", 10, momentum=0.5).mu == 0.5


def test_config_choices_are_the_registries():
    schema = json_schema()["definitions"]
    assert schema["OptimizerConfig"]["properties"]["name"]["enum"] == list(OPTIMIZERS)
    schedules = schema["OptimizerConfig"]["properties"]["schedule"]["oneOf"]
    assert [s["$ref"].rsplit("/", 1)[1] for s in schedules] == [f"{n.capitalize()}Schedule" for n in SCHEDULES]
    assert json_schema()["properties"]["loss"]["enum"] == ["softmax", "svm", "l2", "l1", "huber", "logistic"]


def _defaults(cls, names):
    parameters = inspect.signature(cls.__init__).parameters
    return {name: parameters[name].default for name in names}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_hyperparameter_of_an_update_rule_is_a_config_key_with_its_default(name):
    for key, default in _defaults(OPTIMIZERS[name], hyperparameters(name)).items():
        assert OptimizerConfig.model_fields[key].default == default, key


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_option_of_an_activation_is_a_config_key_with_its_default(name):
    for key, default in _defaults(ACTIVATIONS[name], activation_keys(name)).items():
        assert ModelConfig.model_fields[key].default == default, key
