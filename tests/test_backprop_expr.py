"""`nncli backprop --expr` and the named circuits: the notes' numbers, typed twins, the vector example's Jacobians,
gradients that agree with centered differences, and hostile or bad input refused with exit 2."""

import json
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pydot
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nncli.backprop.circuits import CIRCUITS, circuit, evaluate, parse_values
from nncli.backprop.expr import ExpressionError
from nncli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
runner = CliRunner()
VECTOR = ["x=[0.2, 0.4]", "W=[[0.1, 0.5], [-0.3, 0.8]]"]


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def as_json(*args):
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return {w["name"]: w for w in json.loads(result.output)["wires"]}


def assignments(name):
    return [f"{k}={json.dumps(v)}" for k, v in CIRCUITS[name].values.items()]


def wires(c):
    return {w.name: w for w in c.wires}


def test_vector_circuit_gives_the_lecture_numbers():
    w = wires(circuit("vector"))
    np.testing.assert_allclose(w["q = W @ x"].value, [0.22, 0.26])
    assert w["f = ‖q‖²"].value == pytest.approx(0.116)
    np.testing.assert_allclose(w["q = W @ x"].grad, [0.44, 0.52])
    np.testing.assert_allclose(w["W"].grad, [[0.088, 0.176], [0.104, 0.208]])
    np.testing.assert_allclose(w["x"].grad, [-0.112, 0.636])


def test_sigmoid_staged_reads_the_lecture_wires_and_ends_at_the_neurons_gradients():
    result = run("backprop", "--circuit", "sigmoid-staged")
    assert result.exit_code == 0, result.output
    rows = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and re.fullmatch(r"-?\d+\.\d\d", cells[1]):
            rows[cells[0]] = cells[1:]
    forward = [rows[k][0] for k in ("s = w0·x0 + w1·x1 + w2", "a = −s", "b = exp(a)", "c = 1 + b", "f = 1/c")]
    assert forward == ["1.00", "-1.00", "0.37", "1.37", "0.73"]
    backward = [rows[k][1] for k in ("c = 1 + b", "b = exp(a)", "a = −s", "s = w0·x0 + w1·x1 + w2")]
    assert backward == ["-0.53", "-0.53", "-0.20", "0.20"]
    staged, neuron = wires(circuit("sigmoid-staged")), wires(circuit("sigmoid-neuron"))
    for name in ("w0", "x0", "w1", "x1", "w2"):
        assert staged[name].grad == pytest.approx(neuron[name].grad, rel=1e-12)


@pytest.mark.parametrize("name", list(CIRCUITS))
def test_every_named_circuit_and_its_typed_twin_agree(name):
    named = as_json("backprop", "--circuit", name)
    typed = as_json("backprop", "--expr", CIRCUITS[name].expression, *assignments(name))
    for wire in CIRCUITS[name].values:
        assert typed[wire]["value"] == named[wire]["value"] and typed[wire]["grad"] == named[wire]["grad"]
    (out_named,), (out_typed,) = list(named.values())[-1:], list(typed.values())[-1:]
    assert out_named["value"] == out_typed["value"]


def test_the_typed_vector_example_prints_the_lecture_numbers_at_three_digits():
    result = run("backprop", "--expr", "norm2(W @ x)", *VECTOR, "--digits", "3")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "W @ x = 2 [0.220, 0.260]: upstream 2 [0.440, 0.520]" in text
    assert "dW = 2×2 [[0.088, 0.176], [0.104, 0.208]], dx = 2 [-0.112, 0.636]" in text
    assert "dW = dq xᵀ, dx = Wᵀ dq" in text and "Jacobian with respect to W: 2×4" in text
    typed = as_json("backprop", "--expr", "norm2(W @ x)", *VECTOR)
    assert typed["norm2(W @ x)"]["value"] == pytest.approx(0.116, rel=1e-12)  # --json: full precision


def test_named_circuits_take_overrides():
    w = as_json("backprop", "--circuit", "add-mul", "x=3")
    assert (w["f = q·z"]["value"], w["z"]["grad"], w["x"]["grad"]) == (-32.0, 8.0, -4.0)
    result = run("backprop", "--circuit", "add-mul", "q=3")
    assert result.exit_code == 2 and "has no input 'q'; its inputs are x, y, z" in result.output


def test_a_name_used_twice_is_a_copy_gate_whose_gradients_add():
    result = run("backprop", "--expr", "x * x + x", "x=3")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "x (used 3×) = 3.00: upstream 1.00 + 3.00 + 3.00 → dx = 7.00" in text and "copy gate: adds" in text


def test_jacobian_is_printed_when_small_and_never_built_for_an_elementwise_gate():
    steps = json.loads(run("backprop", "--circuit", "vector", "--json").output)["steps"]
    (dw, dx) = steps[1]["jacobians"]
    assert dw["shape"] == [2, 4] and dw["matrix"] == [[0.2, 0.4, 0.0, 0.0], [0.0, 0.0, 0.2, 0.4]]
    assert dx["matrix"] == [[0.1, 0.5], [-0.3, 0.8]]
    result = run("backprop", "--circuit", "vector", "--jacobian")
    assert "2×4 [[0.20, 0.40, 0.00, 0.00], [0.00, 0.00, 0.20, 0.40]]" in result.output
    wide = evaluate("sum(relu(h))", {"h": np.linspace(-1, 1, 4096) + 1e-3}, check=False)
    relu = wide.steps[1]
    assert relu.jacobians[0][1:] == ((4096, 4096), "diagonal (elementwise), never materialized", None)


def test_dot_format_puts_values_and_gradients_on_the_edges():
    result = run("backprop", "--circuit", "add-mul", "--format", "dot")
    assert result.exit_code == 0, result.output
    (dot,) = pydot.graph_from_dot_data(result.output)
    labels = [e.get_label().strip('"') for e in dot.get_edges()]
    assert "-4.00\\n∂ 3.00" in labels and "3.00\\n∂ -4.00" in labels  # z carries -4 forward and 3 back


def _tree(draw, depth):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(["a", "b", "v", "u", "1.5", "W @ v", "W.T @ u"]))
    x, y = _tree(draw, depth - 1), _tree(draw, depth - 1)
    form = draw(
        st.sampled_from(
            ["({x} + {y})", "({x} - {y})", "({x} * {y})", "tanh({x})", "sigmoid({x})", "-{x}", "({x})**2",
             "exp(tanh({x}))", "log(1 + ({x})**2)", "1 / (2 + sigmoid({x}))", "({x}) / (1 + ({y})**2)",
             "max({x}, {y})", "min({x}, {y})", "abs({x})"]
        )
    )  # fmt: skip
    return form.format(x=x, y=y)


@st.composite
def circuits(draw):
    n = draw(st.integers(1, 3))
    floats = st.floats(-2, 2, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    values = {
        "a": np.array(draw(floats)),
        "b": np.array(draw(floats)),
        "v": np.array(draw(st.lists(floats, min_size=n, max_size=n))),
        "u": np.array(draw(st.lists(floats, min_size=n, max_size=n))),
        "W": np.array(draw(st.lists(st.lists(floats, min_size=n, max_size=n), min_size=n, max_size=n))),
    }
    body = draw(st.sampled_from(["sum({})", "norm2({})", "dot(v, v * ({}))", "{}"])).format(_tree(draw, 3))
    return body, values


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(circuits())
def test_every_input_gradient_of_a_random_circuit_agrees_with_centered_differences(case):
    expression, values = case
    used = {k: v for k, v in values.items() if re.search(rf"\b{k}\b", expression)}
    result = evaluate(expression, used)
    if result.ties:  # a max or min tie, or abs at 0: a subgradient, no derivative to agree with
        return
    assert [c.name for c in result.checks] == list(dict.fromkeys(re.findall(r"\b[abvuW]\b", expression)))
    assert all(c.passed for c in result.checks), (expression, [vars(c) for c in result.checks])


def _alias_matrix(rows, columns):
    """A YAML matrix that declares rows × columns entries in a short text: its first row anchored, the rest aliases."""
    return "[&r [" + ", ".join(["0"] * columns) + "]" + ", *r" * (rows - 1) + "]"


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "().__class__.__bases__[0].__subclasses__()",
    "open('{marker}', 'w')",
    "exec(\"open('{marker}', 'w')\")",
    "x.__class__",
    "(lambda: open('{marker}', 'w'))()",
    "[open('{marker}', 'w') for _ in x]",
    "x[0]",
    "__builtins__",
    "9**9**9",
    "x ** 100000",
    "x if x else open('{marker}', 'w')",
    "(" * 300 + "x" + ")" * 300,
    "x + " * 300 + "x",
]


@pytest.mark.parametrize("expression", HOSTILE)
def test_hostile_expressions_are_refused_and_never_run(expression, tmp_path):
    marker = tmp_path / "pwned"
    result = run("backprop", "--expr", expression.format(marker=marker), "x=[1, 2]")
    assert result.exit_code == 2, result.output
    assert "invalid expression" in result.output and "Traceback" not in result.output
    assert not marker.exists()


def test_a_hundred_million_entries_are_refused_before_any_array_is_built():
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError, match=r"value of W: more than 10000 values.*at most 10,000 numbers"):
            parse_values([f"W={_alias_matrix(10_000, 10_000)}"])  # 10⁸ entries declared
        a, b = np.zeros((1_000, 1)), np.zeros(2_000)
        with pytest.raises(ExpressionError, match=r"a \+ b \(column 5\): its result would have 2,000,000 entries"):
            evaluate("sum(a + b)", {"a": a, "b": b})
        assert tracemalloc.get_traced_memory()[1] < 10_000_000  # a 10⁸ or 2·10⁶ float64 array is 800 or 16 MB
    finally:
        tracemalloc.stop()
    result = run("backprop", "--expr", "sum(W)", f"W={_alias_matrix(10_000, 10_000)}")
    assert result.exit_code == 2 and "value of W: more than 10000 values" in result.output


def caret(output):
    """(the expression line, the caret line) of an error message."""
    lines = output.splitlines()
    i = next(k for k, line in enumerate(lines) if set(line.strip()) == {"^"})
    return lines[i - 1], lines[i]


@pytest.mark.parametrize(
    "args, message, marked",
    [
        (["x + q", "x=1"], "no value for 'q' (column 5): give q a value (values given: x)", "q"),
        (["W @ y", "W=[[1, 2], [3, 4]]", "y=[1, 2, 3]"], "the left side has 2 columns, the right 3 rows", "W @ y"),
        (["1 + x.shape", "x=1"], "the attribute .shape (only .T, the transpose) is not allowed (column 5)", "x.shape"),
        (["2 * print(x)", "x=1"], "calling 'print' (not one of the functions) is not allowed (column 5)", "print(x)"),
        (["x ** y", "x=1", "y=2"], "the exponent of ** must be a number written out", "y"),
        (["1 + log(x)", "x=[1, 0]"], "log(x) (column 5): log needs inputs > 0", "log(x)"),
        (["exp(x)", "x=1000"], "the result is not finite (it overflowed)", "exp(x)"),
        (["2 * relu(x)", "x=[0, 1]"], "relu(x) (column 5) is not differentiable at these values", "relu(x)"),
        (["max(x, y)", "x=1", "y=1"], "on a tie the whole gradient goes to the first input", "max(x, y)"),
    ],
)
def test_bad_input_points_at_its_place_in_the_expression(args, message, marked):
    result = run("backprop", "--expr", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    line, marks = caret(result.output)
    start = marks.index("^")
    assert line[start : start + len(marks.strip())] == marked


@pytest.mark.parametrize(
    "value, message",
    [
        ("x=[[1], [2, 3]]", "value of x: its rows have different lengths (1, 2)"),
        ("x=[1, .nan]", "value of x: it holds inf or nan"),
        ("x=abc", "value of x: 'abc' is not a number, a vector or a matrix"),
        ("x=[[[1]]]", "value of x: a matrix holds numbers only (at most 2 dimensions)"),
        ("sum=1", "expected NAME=VALUE with NAME a name of the expression (not a function"),
        ("x", "expected NAME=VALUE"),
    ],
)
def test_bad_values_are_refused_with_what_is_allowed(value, message):
    result = run("backprop", "--expr", "x", value)
    assert result.exit_code == 2 and message in " ".join(result.output.split()), result.output


def test_a_value_not_in_the_expression_and_a_name_given_twice_are_refused():
    assert (
        "'y' has a value but is not in the expression (its names: x)"
        in run("backprop", "--expr", "x", "x=1", "y=2").output
    )
    assert "x is given twice" in run("backprop", "--expr", "x", "x=1", "x=2").output


def test_graph_and_backprop_take_config_overrides_like_train():
    result = run("graph", SPIRAL, "model.activation=tanh", "model.hidden=[8, 4]")
    assert result.exit_code == 0, result.output
    assert "tanh → (N,8)" in result.output and "mul W3" in result.output
    result = run("backprop", SPIRAL, "model.activation=tanh", "--samples", "2")
    assert result.exit_code == 0, result.output
    assert "tanh ─" in result.output and "relu ─" not in result.output
    bad = run("backprop", SPIRAL, "model.activation=swish")
    assert bad.exit_code == 2 and "model.activation" in bad.output and "Traceback" not in bad.output


def test_the_readme_shows_what_the_typed_vector_example_prints():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = "$ nncli backprop --expr \"norm2(W @ x)\" x='[0.2, 0.4]' W='[[0.1, 0.5], [-0.3, 0.8]]' --digits 3\n"
    shown = readme.split(command, 1)[1].split("```", 1)[0]
    result = runner.invoke(
        app, ["backprop", "--expr", "norm2(W @ x)", *VECTOR, "--digits", "3"], env={"COLUMNS": "118"}
    )
    assert result.exit_code == 0
    assert [line.rstrip() for line in result.output.splitlines()] == shown.splitlines()


def test_graph_of_a_checkpoint_refuses_overrides_of_its_fixed_network(tmp_path):
    out = tmp_path / "spiral"
    trained = run("train", SPIRAL, "train.epochs=1", "data.samples_per_class=10", "--out", out)
    assert trained.exit_code == 0, trained.output
    assert run("graph", out / "best.npz").exit_code == 0
    result = run("graph", out / "best.npz", "model.activation=tanh")
    assert result.exit_code == 2 and "'model.activation=tanh'" in result.output
    assert "is a checkpoint, whose network is fixed by its training" in " ".join(result.output.split())


@pytest.mark.parametrize("option", [["--seed", "3"], ["--samples", "4"]])
def test_options_of_a_config_trace_are_refused_with_a_circuit(option):
    """--samples and --seed choose a config's rows and weights; a circuit has neither, so they are refused, not
    silently ignored."""
    for chosen in (["--circuit", "add-mul"], ["--expr", "x*y", "x=1", "y=2"]):
        result = runner.invoke(app, ["backprop", *chosen, *option])
        assert result.exit_code == 2 and option[0] in result.output
