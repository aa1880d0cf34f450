"""A circuit as the notes sketch it: a graph object whose `forward()` runs its gates in topological order and whose
`backward()` runs them in reverse, each gate applying its local rule to the upstream gradient.

`run(graph)` does both and returns a `Circuit`: every wire's value and gradient, the backward pass gate by gate
(`Step`s, with each gate's Jacobian shape and structure), the points where a gate used a subgradient, and the
numerical check of every input's gradient.
"""

from dataclasses import dataclass, field

import numpy as np

from nncli.backprop.gates import Copy
from nncli.gradcheck.numerical import NETWORK_TOLERANCE, check_gradient

MAX_JACOBIAN = 36  # entries of a Jacobian small enough to print in full


@dataclass(eq=False)
class Node:
    """A wire and the gate that computes it: `kind` "input", "const" or "gate"; `label` the wire as shown
    ("q = W @ x", or the typed text); `name` its short name ("q"); `span` its columns in the expression."""

    kind: str
    label: str
    name: str
    gate: object = None
    inputs: list = field(default_factory=list)
    span: tuple = (0, 0)
    shape: tuple = ()
    value: np.ndarray = None
    grad: np.ndarray = None
    upstream: list = field(default_factory=list)


@dataclass
class Wire:
    """A wire of a circuit: its forward value and the gradient of the output on it (floats for scalars)."""

    name: str
    value: object
    grad: object

    def __post_init__(self):
        self.value, self.grad = (float(v) if np.ndim(v) == 0 else np.asarray(v) for v in (self.value, self.grad))


@dataclass
class Step:
    """One gate of the backward pass: its output, the upstream gradient (one per use, for a copy gate), its rule,
    and what each input receives (`downstream`, {"dW": …}); `jacobians` [(input, (rows, columns), structure,
    the full Jacobian or None)]."""

    gate: str
    rule: str
    output: object
    upstream: object
    downstream: dict
    jacobians: list = field(default_factory=list)
    span: tuple = (0, 0)


@dataclass
class Tie:
    """A gate evaluated exactly at a point where it is not differentiable: which gate, where, and the convention."""

    gate: str
    span: tuple
    entries: int
    subgradient: str


@dataclass
class Circuit:
    """A worked circuit: the formula, every wire (inputs first, output last) and its gates in backward order."""

    name: str
    formula: str
    wires: list
    steps: list
    checks: list = field(default_factory=list)
    ties: list = field(default_factory=list)
    text: str = ""
    graph: object = None


def _d(name):
    return f"d{name}" if name.isidentifier() else f"d({name})"


class Graph:
    """The nodes of a circuit in topological order (every gate after its inputs); the last one is the output."""

    def __init__(self, text, nodes):
        self.text, self.nodes = text, nodes

    @property
    def output(self):
        return self.nodes[-1]

    @property
    def inputs(self):
        return [n for n in self.nodes if n.kind == "input"]

    def forward(self):
        """Run every gate in topological order; the output's value. A value outside a gate's domain (log of 0) or
        a result that overflows is a ValueError whose `args[1]` is the node."""
        with np.errstate(all="ignore"):
            for node in self.nodes:
                if node.kind != "gate":
                    continue
                args = [self.nodes[i].value for i in node.inputs]
                domain = getattr(node.gate, "domain", None)
                problem = domain(*args) if domain else None
                if problem:
                    raise ValueError(problem, node)
                node.value = np.asarray(node.gate.forward(*args), np.float64)
                if not np.all(np.isfinite(node.value)):
                    raise ValueError("the result is not finite (it overflowed)", node)
        return self.output.value

    def backward(self):
        """Run every gate in reverse order from d(output) = 1 (ones for a tensor output: the gradient of its sum);
        each wire's gradient is the sum of what its uses send back. Returns the `Step`s in backward order."""
        for node in self.nodes:
            node.grad, node.upstream = None, []
        self.sent = {}  # (input index, gate index): the gradient that gate sent to that input
        self.output.upstream = [np.ones_like(self.output.value)]
        steps = []
        for k in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[k]
            if not node.upstream:
                continue
            node.grad = np.sum(node.upstream, axis=0) if len(node.upstream) > 1 else node.upstream[0]
            if node.kind != "gate":
                continue
            if isinstance(node.gate, Copy):
                sent = (node.gate.backward(*node.upstream),)
            else:
                sent = node.gate.backward(node.grad)
                sent = sent if isinstance(sent, tuple) else (sent,)
            for i, g in zip(node.inputs, sent):
                self.nodes[i].upstream.append(np.asarray(g, np.float64))
                self.sent[i, k] = self.nodes[i].upstream[-1]
            steps.append(self._step(node, sent))
        return steps

    def _step(self, node, sent):
        inputs = [self.nodes[i] for i in node.inputs]
        upstream = list(node.upstream) if isinstance(node.gate, Copy) else node.grad
        downstream = {_d(x.name): g for x, g in zip(inputs, sent) if x.kind != "const"}
        jacobians = [
            (x.name, (node.value.size, x.value.size), node.gate.structure, self._jacobian(node, j))
            for j, x in enumerate(inputs)
            if x.kind != "const"
        ]
        return Step(node.label, node.gate.rule, node.value, upstream, downstream, jacobians, node.span)

    def _jacobian(self, node, j):
        """d node / d input j as a (node size, input size) matrix, row by row from unit upstream gradients; only
        when it has at most MAX_JACOBIAN entries (the rule never needs it)."""
        x = self.nodes[node.inputs[j]]
        if node.value.size * x.value.size > MAX_JACOBIAN:
            return None
        rows = []
        for i in range(node.value.size):
            e = np.zeros(node.value.size)
            e[i] = 1.0
            e = e.reshape(node.value.shape)
            sent = (
                node.gate.backward(*[e] * len(node.upstream)) if isinstance(node.gate, Copy) else node.gate.backward(e)
            )
            sent = sent if isinstance(sent, tuple) else (sent,)
            rows.append(np.asarray(sent[j], np.float64).reshape(-1))
        return np.array(rows)

    def ties(self):
        """The gates whose input sits exactly at their non-differentiable point, with the subgradient they used."""
        found = []
        for node in self.nodes:
            count = node.gate.ties() if node.kind == "gate" and hasattr(node.gate, "ties") else 0
            if count:
                found.append(Tie(node.label, node.span, count, node.gate.subgradient))
        return found

    def _kinks(self):
        parts = [np.ravel(n.gate.kinks()) for n in self.nodes if n.kind == "gate" and hasattr(n.gate, "kinks")]
        return np.concatenate(parts) if parts else np.zeros(0, bool)

    def check(self, tolerance=NETWORK_TOLERANCE):
        """Every input's gradient against centered differences of sum(output) (`GradCheck`s, in input order)."""

        def f():
            return float(np.sum(self.forward()))

        results = []
        for node in self.inputs:
            node.value = np.array(node.value, np.float64, order="C")  # perturbed in place; keeps a 0-d shape
            grad = np.zeros(node.shape) if node.grad is None else node.grad
            results.append(check_gradient(node.name, f, node.value, grad, kinks=self._kinks, tolerance=tolerance))
        return results


def run(graph, name="expression", formula=None, check=True):
    """Forward and backward through `graph`: a `Circuit` with every wire (inputs, then gates; the copies of a
    name used twice are steps, not wires), the steps in backward order, the ties and the numerical checks."""
    graph.forward()
    steps = graph.backward()
    wires = [
        Wire(n.label, n.value, np.zeros(n.shape) if n.grad is None else n.grad)
        for n in graph.nodes
        if n.kind == "input" or (n.kind == "gate" and not isinstance(n.gate, Copy))
    ]
    result = Circuit(name, formula or graph.text, wires, steps, ties=graph.ties(), text=graph.text, graph=graph)
    if check:
        result.checks = graph.check()
    return result
