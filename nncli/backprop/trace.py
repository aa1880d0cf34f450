"""Backpropagation made visible: a gate-by-gate trace of one forward and backward pass, and the notes' circuits.

`trace(net, X, y)` runs the engine's own `net.loss()` on a few samples while `gates.record` copies what flows
through each gate of `net.layers`, then lays it out in backward order, one `Step` per gate of `graph.network_graph`:
what the gate computed, the upstream gradient it got, its local rule, and the gradients it sent on. An Affine is
shown as its two gates from its own cached x and results: the add gate passes dout to b (db = Σ_rows dout) and to
the product unchanged; the multiply gate gives dW = xᵀ·dout and dx = dout·Wᵀ. A norm gate (batchnorm, layernorm)
sends dgamma_i and dbeta_i to its parameters and dz_i back to the affine's output z_i.

The notes' worked circuits (`add-mul`, `sigmoid-neuron`, `max`, `vector`, `sigmoid-staged`) and typed ones are
in `backprop.circuits`, built from the same gates.
"""

from dataclasses import dataclass, field

import numpy as np

from nncli.backprop.gates import Add, record
from nncli.backprop.graph import network_graph
from nncli.gradcheck.numerical import check_network
from nncli.nn.layers import Dropout
from nncli.nn.losses import LOSSES
from nncli.nn.normalization import Normalization
from nncli.nn.regularization import add_regularization_grad

RULES = {
    "add": Add.rule + " (to b summed over the batch rows: db = Σ_rows dout)",
    "mul": "multiply gate: each input gets the other input times the upstream gradient (dW = xᵀ·dout, dx = dout·Wᵀ)",
    "reg": "regularization: dW = l2·W (L2) + l1·sign(W) (L1), for every weight matrix; biases get none",
    "join": Add.rule,
}  # the affine's two gates and the loss's branches; every other gate and loss states its own `rule`


@dataclass
class Step:
    """One gate of the backward pass: its forward output, upstream gradient and the gradients it sends on.

    `downstream` maps a name (`dW2`, `db2`, `dh1`, `dx`, `dscores`) to an array or a float.
    """

    gate: str
    rule: str
    output: object
    upstream: object
    downstream: dict


@dataclass
class Trace:
    """One forward and backward pass through a network, gate by gate (`steps` in backward order).

    `grads` are the engine's parameter gradients; for each weight the sum of `data_grads` (back through the
    scores) and `reg_grads` (back through the regularization branch): the weights fork, and gradients add.
    `dx` is dL/dX; `checks` the numerical gradient check of every gradient (`GradCheck`s); X, y the samples.
    """

    loss: float
    data_loss: float
    reg_loss: float
    steps: list
    grads: dict
    data_grads: dict
    reg_grads: dict
    dx: np.ndarray
    X: np.ndarray
    y: np.ndarray
    checks: list = field(default_factory=list)


def summary(a):
    """What to show of a value: {'shape', 'mean', 'min', 'max'} and 'values' (a list) when it has at most 6 entries."""
    a = np.asarray(a, np.float64)
    info = {"shape": a.shape, "mean": float(a.mean()), "min": float(a.min()), "max": float(a.max())}
    if a.size <= 6:
        info["values"] = a.tolist()
    return info


def trace(net, X, y, check=True):
    """Trace `net.loss(X, y)` (train mode, dropout on) through `net.layers`; check every gradient numerically if asked."""
    X = np.ascontiguousarray(X, dtype=net.dtype)
    with record(net.layers) as tape:
        loss = net.loss(X, y, train=True, need_dx=True)
    calls = _one_call_each(net, tape)
    data_grads, reg_grads = {}, {}
    for i, affine in enumerate(net.affines, start=1):
        back = calls[id(affine)][1]
        data_grads[f"W{i}"], data_grads[f"b{i}"] = back.grads["W"], back.grads["b"]
        reg_grads[f"W{i}"] = add_regularization_grad(affine.W, np.zeros_like(affine.W), net.l2, net.l1)
    for i, norm in enumerate(net.norms, start=1):  # gamma and beta are never regularized: only the scores' path
        back = calls[id(norm)][1]
        data_grads[f"gamma{i}"], data_grads[f"beta{i}"] = back.grads["gamma"], back.grads["beta"]
    reg_loss = net.regularization_loss()
    dscores = calls[id(net.layers[-1])][1].value
    steps = [_step(node, net, calls, float(loss), reg_loss, reg_grads, dscores) for node in network_graph(net).gates]
    grads = {name: g.copy() for name, g in net.grads.items()}
    result = Trace(
        float(loss),
        float(net.data_loss),
        reg_loss,
        steps[::-1],
        grads,
        data_grads,
        reg_grads,
        net.dx.copy(),
        X,
        np.asarray(y),
    )
    if check:
        result.checks = check_network(net, X, y)
    return result


def _one_call_each(net, tape):
    """{id(layer): (forward call, backward call)} from the tape; exactly one of each per layer, or RuntimeError."""
    calls = {}
    for layer in net.layers:
        fwd, bwd = tape.of(layer, "forward"), tape.of(layer, "backward")
        if len(fwd) != 1 or len(bwd) != 1:
            raise RuntimeError(
                f"expected one forward and one backward of {type(layer).__name__}, "
                f"recorded {len(fwd)} and {len(bwd)}: the engine no longer runs net.layers in turn"
            )
        calls[id(layer)] = (fwd[0], bwd[0])
    return calls


def _step(node, net, calls, loss, reg_loss, reg_grads, dscores):
    """The backward step of one gate node: the join, the regularization branch, the loss, or a layer's gate."""
    if node.id == "join":
        grads = {"d(data loss)": 1.0, "d(regularization)": 1.0}
        return Step("+ (L = data loss + regularization)", RULES["join"], loss, 1.0, grads)
    if node.id == "reg":
        grads = {f"d{w}": reg_grads[w] for w in node.inputs}
        return Step(f"{node.label} ({node.detail})", RULES["reg"], reg_loss, 1.0, grads)
    if node.id == "loss":
        return Step(node.label, LOSSES[net.loss_name].rule, float(net.data_loss), 1.0, {"dscores": dscores})
    return _layer_step(node, *calls[id(node.layer)], normed=bool(net.norms))


def _layer_step(node, fwd, back, normed=False):
    """The step of a gate inside layer i. Wires: input h(i−1) (x for i = 1) → z_i = h·W_i + b_i (→ n_i, the norm's
    gamma_i·x̂ + beta_i) → a_i (activation) → h_i (after dropout, else a_i)."""
    i = int(node.group.split()[-1])
    h = "x" if i == 1 else f"h{i - 1}"
    if node.id.startswith("add_b"):
        return Step(
            node.label, RULES["add"], fwd.result, back.value, {f"db{i}": back.grads["b"], f"d({h}·W{i})": back.value}
        )
    if node.id.startswith("mul_W"):
        return Step(
            node.label,
            RULES["mul"],
            np.matmul(fwd.value, node.layer.W),
            back.value,
            {f"dW{i}": back.grads["W"], f"d{h}": back.result},
        )
    label = f"{node.label} {node.detail}" if node.detail else node.label
    if isinstance(node.layer, Normalization):
        grads = {f"dgamma{i}": back.grads["gamma"], f"dbeta{i}": back.grads["beta"], f"dz{i}": back.result}
        return Step(label, node.layer.rule, fwd.result, back.value, grads)
    wire = f"da{i}" if isinstance(node.layer, Dropout) else f"dn{i}" if normed else f"dz{i}"
    return Step(label, node.layer.rule, fwd.result, back.value, {wire: back.result})


def trace_config(config, samples=2, seed=None):
    """Trace the network a config describes (float64, initialized with `seed`, default the config's) on `samples`
    training rows of its data drawn with the same seed. Returns (trace, network)."""
    from nncli.data.dataset import load_dataset
    from nncli.nn.network import build_network

    seed = config.seed if seed is None else seed
    data = load_dataset(config.data, config.seed, np.float64, LOSSES[config.loss].task)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(data.train), min(samples, len(data.train)), replace=False))
    net = build_network(config, data.num_features, data.num_classes, rng=seed, dtype=np.float64)
    return trace(net, data.train.batch(rows), data.train.y[rows]), net
