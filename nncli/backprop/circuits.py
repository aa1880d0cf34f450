"""The notes' worked circuits, and typed ones: an expression and NAME=VALUE inputs → a traced `Circuit`.

Each named circuit is an expression of the language in `expr` with the notes' values and wire names, so
`--circuit vector` and `--expr "norm2(W @ x)" x=... W=...` run the very same gates; overrides change its inputs.
"""

from dataclasses import dataclass, field

import numpy as np

from nncli.backprop.circuit import Node, run
from nncli.backprop.expr import FUNCTIONS, ExpressionError, build
from nncli.config.safe_yaml import MAX_VALUES, parse_yaml
from nncli.errors import ConfigError, show_value

MAX_VALUE_ENTRIES = MAX_VALUES  # safe_yaml refuses more values than that before any list is built


@dataclass
class Named:
    """A worked circuit of the notes: its formula as the notes write it, the expression, its values and wires."""

    formula: str
    expression: str
    values: dict
    labels: dict = field(default_factory=dict)


CIRCUITS = {
    "add-mul": Named(
        "f = (x + y)·z",
        "(x + y) * z",
        {"x": -2.0, "y": 5.0, "z": -4.0},
        {"x + y": "q = x + y", "(x + y) * z": "f = q·z"},
    ),
    "sigmoid-neuron": Named(
        "f = σ(w0·x0 + w1·x1 + w2)",
        "sigmoid(w0 * x0 + w1 * x1 + w2)",
        {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
        {"w0 * x0 + w1 * x1 + w2": "s = w0·x0 + w1·x1 + w2", "sigmoid(w0 * x0 + w1 * x1 + w2)": "f = σ(s)"},
    ),
    "max": Named(
        "f = 2·(x·y + max(z, w))",
        "2 * (x * y + max(z, w))",
        {"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0},
        {
            "x * y": "p = x·y",
            "max(z, w)": "m = max(z, w)",
            "x * y + max(z, w)": "s = p + m",
            "2 * (x * y + max(z, w))": "f = 2·s",
        },
    ),
    "vector": Named(
        "f(x, W) = ‖W·x‖²",
        "norm2(W @ x)",
        {"x": [0.2, 0.4], "W": [[0.1, 0.5], [-0.3, 0.8]]},
        {"W @ x": "q = W @ x", "norm2(W @ x)": "f = ‖q‖²"},
    ),
    "sigmoid-staged": Named(
        "f = 1 / (1 + exp(−(w0·x0 + w1·x1 + w2)))",
        "1 / (1 + exp(-(w0 * x0 + w1 * x1 + w2)))",
        {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
        {
            "w0 * x0 + w1 * x1 + w2": "s = w0·x0 + w1·x1 + w2",
            "-(w0 * x0 + w1 * x1 + w2)": "a = −s",
            "exp(-(w0 * x0 + w1 * x1 + w2))": "b = exp(a)",
            "1 + exp(-(w0 * x0 + w1 * x1 + w2))": "c = 1 + b",
            "1 / (1 + exp(-(w0 * x0 + w1 * x1 + w2)))": "f = 1/c",
        },
    ),
}


def parse_values(assignments):
    """{name: float64 array} from NAME=VALUE texts, each VALUE a number or a (nested) list written as YAML/JSON:
    a scalar, a vector or a matrix of finite numbers. A problem is an ExpressionError naming the assignment."""
    values = {}
    for text in assignments:
        name, sep, raw = str(text).partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or name.startswith("_") or name in FUNCTIONS:
            raise ExpressionError(
                f"{show_value(text)}: expected NAME=VALUE with NAME a name of the expression (not a function, "
                "not starting with _), e.g. x=3 or W='[[0.1, 0.5], [-0.3, 0.8]]'"
            )
        if name in values:
            raise ExpressionError(f"{name} is given twice ({show_value(text)})")
        try:
            parsed = parse_yaml(raw, f"value of {name}")
        except ConfigError as e:  # too many numbers is refused here, before any list or array is built
            raise ExpressionError(f"{e.problems[0]}; a value holds at most {MAX_VALUE_ENTRIES:,} numbers") from None
        values[name] = _array(name, parsed)
    return values


def _array(name, value):
    """A scalar, vector or matrix of finite numbers from a parsed YAML value, or ExpressionError saying what is wrong."""

    def bad(problem):
        return ExpressionError(f"value of {name}: {problem}; give a number, a list [1, 2] or a matrix [[1, 2], [3, 4]]")

    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if number(value):
        array = np.array(float(value))
    elif isinstance(value, list) and value and all(number(v) for v in value):
        array = np.array(value, np.float64)
    elif isinstance(value, list) and value and all(isinstance(r, list) and r for r in value):
        if any(not number(v) for r in value for v in r):
            raise bad("a matrix holds numbers only (at most 2 dimensions)")
        lengths = sorted({len(r) for r in value})
        if len(lengths) > 1:
            raise bad(f"its rows have different lengths ({', '.join(map(str, lengths))})")
        array = np.array(value, np.float64)
    else:
        raise bad(f"{show_value(value)} is not a number, a vector or a matrix")
    if not np.all(np.isfinite(array)):
        raise bad("it holds inf or nan")
    return array


def evaluate(expression, values, name="expression", formula=None, labels=None, check=True):
    """Trace the expression over `values` ({name: array}): a `Circuit` (see circuit.run). A value outside a gate's
    domain or an overflow is an ExpressionError pointing at that gate."""
    graph = build(expression, values, labels)
    try:
        return run(graph, name, formula, check)
    except ValueError as e:
        if len(e.args) != 2 or not isinstance(e.args[1], Node):
            raise
        node = e.args[1]
        raise ExpressionError(f"{node.label} (column {node.span[0] + 1}): {e.args[0]}", expression, node.span) from None


def circuit(name, overrides=()):
    """The worked circuit `name` (one of CIRCUITS) at the notes' values, or with NAME=VALUE `overrides` of its
    inputs, computed with the engine's gates."""
    if name not in CIRCUITS:
        raise ValueError(f"circuit must be one of {', '.join(CIRCUITS)}, got {name!r}")
    named = CIRCUITS[name]
    values = {k: np.array(v, np.float64) for k, v in named.values.items()}
    changed = parse_values(overrides)
    unknown = sorted(set(changed) - set(values))
    if unknown:
        raise ExpressionError(f"circuit {name} has no input {unknown[0]!r}; its inputs are {', '.join(values)}")
    values.update(changed)
    return evaluate(named.expression, values, name, named.formula, named.labels)


def refuse_ties(result):
    """An ExpressionError for the first gate of `result` evaluated exactly at its non-differentiable point."""
    if result.ties:
        tie = result.ties[0]
        entries = f"{tie.entries} entr{'y' if tie.entries == 1 else 'ies'}"
        raise ExpressionError(
            f"{tie.gate} (column {tie.span[0] + 1}) is not differentiable at these values ({entries} exactly at "
            f"its kink); the gradient shown used the subgradient convention: {tie.subgradient}",
            result.text,
            tie.span,
        )


def as_dict(result):
    """The traced circuit as plain data at full precision (for JSON): wires, steps in backward order, checks."""

    def plain(v):
        return [plain(x) for x in v] if isinstance(v, list) else np.asarray(v, np.float64).tolist()

    return {
        "name": result.name,
        "formula": result.formula,
        "expression": result.text,
        "wires": [
            {"name": w.name, "shape": list(np.shape(w.value)), "value": plain(w.value), "grad": plain(w.grad)}
            for w in result.wires
        ],
        "steps": [
            {
                "gate": s.gate,
                "rule": s.rule,
                "output": plain(s.output),
                "upstream": plain(s.upstream),
                "downstream": {k: plain(v) for k, v in s.downstream.items()},
                "jacobians": [
                    {
                        "input": name,
                        "shape": list(shape),
                        "structure": structure,
                        "matrix": None if matrix is None else matrix.tolist(),
                    }
                    for name, shape, structure, matrix in s.jacobians
                ],
            }
            for s in result.steps
        ],
        "ties": [
            {"gate": t.gate, "column": t.span[0] + 1, "entries": t.entries, "subgradient": t.subgradient}
            for t in result.ties
        ],
        "checks": [c.as_dict() for c in result.checks],
    }


def to_dot(result, show):
    """Graphviz DOT of the circuit: a box per gate, an ellipse per input; each edge carries the value flowing
    forward and the gradient flowing back along it, both written by `show` (a value → text function)."""
    graph = result.graph

    def quote(text):
        return '"' + str(text).replace('"', '\\"') + '"'

    lines = [f"digraph {quote(result.name)} {{", "  rankdir=LR;"]
    for k, n in enumerate(graph.nodes):
        style = {"input": "shape=ellipse", "const": "shape=plaintext", "gate": "shape=box"}[n.kind]
        label = n.label if n.kind != "gate" else f"{type(n.gate).__name__.lower()}\\n{n.label}"
        if k == len(graph.nodes) - 1:
            label += f"\\n= {show(n.value)}\\ngradient {show(n.grad)}"
        lines.append(f"  n{k} [label={quote(label)}, {style}];")
    for (i, k), g in graph.sent.items():
        edge = f"{show(graph.nodes[i].value)}\\n∂ {show(g)}"
        lines.append(f"  n{i} -> n{k} [label={quote(edge)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
