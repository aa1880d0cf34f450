"""The computational graph of a network, read off the gates the trainer runs (`net.layers`).

x (N,D) → mul W1 → add b1 (→ norm) → activation (→ dropout) → … → mul WL → add bL → scores (N,C) → loss → + reg → L.
Each Affine is drawn as its two gates, a multiply by W and an add of b; a norm gate (batchnorm, layernorm) takes its
learned gamma_i and beta_i as parameter nodes, as the add takes b_i. The weights also feed the regularization
branch (0.5·l2·Σ‖W‖², l1·Σ|W|) that joins the data loss in an add gate: a fork, so the gradient of each W is
the sum of what comes back along both paths.
"""

from dataclasses import dataclass, field

import numpy as np

from nncli.nn.layers import Affine, Dropout
from nncli.nn.losses import LOSSES
from nncli.nn.network import build_network
from nncli.nn.normalization import Normalization


@dataclass
class Node:
    """One node: a gate, or a value that enters (x, y, W1, b1, …) or leaves (scores, L) the gates.

    `kind` is "input", "param", "gate" or "value" (the keys of DOT_STYLE); `shape` is the node's output shape
    with N for the batch, e.g. "(N,100)"; `inputs` are node ids; `layer` is the engine gate behind a node (the
    same Affine behind `mul Wi` and `add bi`); `group` names where the node sits ("layer 1", "loss",
    "regularization") for a tree view.
    """

    id: str
    label: str
    kind: str
    shape: str
    inputs: list = field(default_factory=list)
    layer: object = None
    group: str = ""
    detail: str = ""


@dataclass
class Graph:
    """The nodes of a network's graph in forward (topological) order."""

    name: str
    nodes: list

    @property
    def gates(self):
        return [n for n in self.nodes if n.kind == "gate"]

    def chain(self):
        """The forward path as one line: `x (N,2) → mul W1 (2,100) → add b1 → relu → … → + 0.5·l2·Σ‖W‖² → L`."""
        parts = []
        for n in self.nodes:
            if n.kind == "input" and n.id == "x":
                parts.append(f"x {n.shape}")
            elif n.id == "scores":
                parts.append(f"scores {n.shape}")
            elif n.id == "reg":
                parts.append(f"+ {n.label}")
            elif n.kind == "gate" and n.id != "join":
                parts.append(f"{n.label} {n.detail}" if n.label.startswith(("mul ", "dropout")) else n.label)
            elif n.id == "L":
                parts.append("L")
        return " → ".join(parts)


def _shape(*dims):
    return "(" + ",".join(map(str, dims)) + ("," if len(dims) == 1 else "") + ")"


def regularization_label(l2, l1):
    """`0.5·l2·Σ‖W‖²`, `l1·Σ|W|`, both joined by +, or "" without regularization."""
    terms = (["0.5·l2·Σ‖W‖²"] if l2 else []) + (["l1·Σ|W|"] if l1 else [])
    return " + ".join(terms)


def network_graph(net, name="network"):
    """The graph of a `Network`, one gate node per engine gate (two for each Affine), in forward order."""
    nodes = [Node("x", "x", "input", _shape("N", net.sizes[0]), group="input")]
    prev, width, layer_no = "x", net.sizes[0], 0
    for layer in net.layers:
        if isinstance(layer, Affine):
            layer_no += 1
            width = layer.W.shape[1]
            nodes += _affine_nodes(layer_no, layer, prev)
        elif isinstance(layer, Normalization):
            nodes += _norm_nodes(layer_no, layer, prev)
        else:
            label = "dropout" if isinstance(layer, Dropout) else layer.name
            detail = f"p={layer.p:g}" if isinstance(layer, Dropout) else ""
            nodes.append(
                Node(
                    f"{label}{layer_no}", label, "gate", _shape("N", width), [prev], layer, f"layer {layer_no}", detail
                )
            )
        prev = nodes[-1].id
    return Graph(
        name, nodes + _loss_nodes(net, prev, width, [n.id for n in nodes if n.kind == "param" and n.id[0] == "W"])
    )


def _affine_nodes(i, layer, prev):
    """Layer i's affine as its two gates: `mul Wi` (x·W) and `add bi`, with W and b as parameter nodes."""
    fan_in, width = layer.W.shape
    group = f"layer {i}"
    return [
        Node(f"W{i}", f"W{i}", "param", _shape(fan_in, width), group=group),
        Node(
            f"mul_W{i}", f"mul W{i}", "gate", _shape("N", width), [prev, f"W{i}"], layer, group, _shape(fan_in, width)
        ),
        Node(f"b{i}", f"b{i}", "param", _shape(width), group=group),
        Node(f"add_b{i}", f"add b{i}", "gate", _shape("N", width), [f"mul_W{i}", f"b{i}"], layer, group, _shape(width)),
    ]


def _norm_detail(i, layer):
    """What a norm gate shows beside its name: `gamma1, beta1 (100,); eps 1e-05, momentum 0.9` (batch norm's running
    averages are what the momentum sets; layer norm keeps none)."""
    detail = f"gamma{i}, beta{i} {_shape(layer.gamma.shape[0])}; eps {layer.eps:g}"
    return detail + (f", momentum {layer.momentum:g}" if hasattr(layer, "running_mean") else "")


def _norm_nodes(i, layer, prev):
    """Layer i's norm gate, out = gamma_i·x̂ + beta_i, with gamma_i and beta_i as parameter nodes."""
    width, group = layer.gamma.shape[0], f"layer {i}"
    params = [Node(f"{name}{i}", f"{name}{i}", "param", _shape(width), group=group) for name in layer.params]
    inputs = [prev, *(p.id for p in params)]
    gate = Node(
        f"{layer.name}{i}", layer.name, "gate", _shape("N", width), inputs, layer, group, _norm_detail(i, layer)
    )
    return [*params, gate]


def _loss_nodes(net, prev, width, weights):
    """scores → loss (with y: class ids (N,), or (N,K) targets for a regression or attributes loss), the loss's local
    rule as its detail, and the regularization branch over `weights` joining it in an add gate → L."""
    loss = LOSSES[net.loss_name]
    y_shape = _shape("N") if loss.task == "classification" else _shape("N", width)
    nodes = [
        Node("scores", "scores", "value", _shape("N", width), [prev], group="loss"),
        Node("y", "y", "input", y_shape, group="loss"),
        Node("loss", f"{net.loss_name} loss", "gate", "()", ["scores", "y"], group="loss", detail=loss.rule),
    ]
    reg = regularization_label(net.l2, net.l1)
    if not reg:
        return nodes + [Node("L", "L", "value", "()", ["loss"], group="loss")]
    strengths = ", ".join(f"{k} {v:g}" for k, v in (("l2", net.l2), ("l1", net.l1)) if v)
    return nodes + [
        Node("reg", reg, "gate", "()", weights, group="regularization", detail=strengths),
        Node("join", "+", "gate", "()", ["loss", "reg"], group="regularization"),
        Node("L", "L", "value", "()", ["join"], group="regularization"),
    ]


def config_graph(config, input_dim, num_classes):
    """The graph of the network a config describes, for data with `input_dim` features and `num_classes` classes."""
    net = build_network(config, input_dim, num_classes, rng=0, dtype=np.float64)
    return network_graph(net, config.name)


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


DOT_STYLE = {
    "input": "shape=ellipse",
    "param": "shape=ellipse, style=dashed",
    "gate": "shape=box, style=rounded",
    "value": "shape=ellipse, style=bold",
}


def to_dot(graph):
    """Graphviz DOT text of the graph: one node per gate and per value, edges in the direction of the forward pass."""
    lines = [f"digraph {_quote(graph.name)} {{", "  rankdir=LR;"]
    for n in graph.nodes:
        label = n.label if n.kind != "gate" else f"{n.label}\n{n.detail}" if n.detail else n.label
        if n.kind != "gate" and n.shape != "()":
            label += f"\n{n.shape}"
        elif n.shape != "()":
            label += f"\n→ {n.shape}"
        lines.append(f"  {_quote(n.id)} [label={_quote(label)}, {DOT_STYLE[n.kind]}];")
    for n in graph.nodes:
        for src in n.inputs:
            lines.append(f"  {_quote(src)} -> {_quote(n.id)};")
    lines.append("}")
    return "\n".join(lines) + "\n"
