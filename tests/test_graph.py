"""`nncli graph` and `nncli backprop`: the graph is the engine's gates, the trace is the engine's backward pass,
and the notes' worked circuits give the notes' numbers."""

import re
from pathlib import Path

import numpy as np
import pydot
import pytest
from typer.testing import CliRunner

from nncli.backprop.circuits import circuit
from nncli.backprop.graph import network_graph, to_dot
from nncli.backprop.trace import trace
from nncli.cli import app
from nncli.nn.network import Network

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def make_net(hidden, activation, loss, seed, **kw):
    return Network(4, hidden, 3, activation=activation, loss=loss, l2=0.01, dtype=np.float64, rng=seed, **kw)


NETS = [
    (hidden, act, loss)
    for hidden in ([6], [6, 5])
    for act in ("relu", "leaky_relu", "sigmoid", "tanh", "elu")
    for loss in ("softmax", "svm")
]


@pytest.mark.parametrize("hidden, activation, loss", NETS)
def test_trace_gradients_are_the_engines_backward_pass(hidden, activation, loss):
    rng = np.random.default_rng(len(hidden))
    X, y = rng.standard_normal((3, 4)), rng.integers(3, size=3)
    t = trace(make_net(hidden, activation, loss, 7), X, y, check=False)
    engine = make_net(hidden, activation, loss, 7)
    total = engine.loss(X.copy(), y, need_dx=True)

    assert t.loss == pytest.approx(total, rel=1e-12)
    assert set(t.grads) == set(engine.grads)
    for name, g in engine.grads.items():
        np.testing.assert_allclose(t.grads[name], g, rtol=1e-12, atol=1e-15)
        # a weight forks into the scores and the regularization branch: the two gradients add up
        reg = t.reg_grads.get(name, 0.0)
        np.testing.assert_allclose(t.data_grads[name] + reg, g, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(t.dx, engine.dx, rtol=1e-12, atol=1e-15)

    steps = {s.gate: s for s in t.steps}
    layers = len(hidden) + 1
    for i in range(1, layers + 1):
        np.testing.assert_allclose(steps[f"add b{i}"].downstream[f"db{i}"], engine.grads[f"b{i}"], atol=1e-15)
        mul = steps[f"mul W{i}"]
        np.testing.assert_allclose(mul.downstream[f"dW{i}"] + t.reg_grads[f"W{i}"], engine.grads[f"W{i}"], atol=1e-15)
    np.testing.assert_allclose(steps["mul W1"].downstream["dx"], engine.dx, atol=1e-15)


def test_trace_steps_chain_each_gates_downstream_to_the_next_gates_upstream():
    net = make_net([6, 5], "tanh", "softmax", 3, dropout=0.3, l1=0.001)
    rng = np.random.default_rng(0)
    t = trace(net, rng.standard_normal((4, 4)), rng.integers(3, size=4), check=False)
    gates = [s.gate for s in t.steps]
    assert gates[:3] == [
        "+ (L = data loss + regularization)",
        "0.5·l2·Σ‖W‖² + l1·Σ|W| (l2 0.01, l1 0.001)",
        "softmax loss",
    ]
    assert gates[3:] == [
        "add b3",
        "mul W3",
        "dropout p=0.3",
        "tanh",
        "add b2",
        "mul W2",
        "dropout p=0.3",
        "tanh",
        "add b1",
        "mul W1",
    ]
    layer_steps = t.steps[2:]
    for upper, lower in zip(layer_steps, layer_steps[1:]):
        sent = [v for k, v in upper.downstream.items() if not k.startswith(("db", "dW"))][-1]
        np.testing.assert_array_equal(sent, lower.upstream)
    mul = t.steps[4]  # mul W3: dW = xᵀ·dout, the local rule of the notes
    x_in = t.steps[5].output
    np.testing.assert_allclose(mul.downstream["dW3"], x_in.T @ mul.upstream, atol=1e-15)


def test_trace_checks_every_gradient_numerically():
    net = make_net([6], "tanh", "softmax", 1)
    rng = np.random.default_rng(1)
    t = trace(net, rng.standard_normal((4, 4)), rng.integers(3, size=4))
    assert [c.name for c in t.checks] == ["x", "W1", "b1", "W2", "b2"]
    assert all(c.passed for c in t.checks), [(c.name, c.max_rel_error) for c in t.checks]


def test_the_notes_circuits_give_the_notes_values():
    add_mul = {w.name: w for w in circuit("add-mul").wires}
    assert add_mul["f = q·z"].value == -12
    assert (add_mul["x"].grad, add_mul["y"].grad, add_mul["z"].grad) == (-4, -4, 3)

    neuron = {w.name: w for w in circuit("sigmoid-neuron").wires}
    assert neuron["f = σ(s)"].value == pytest.approx(0.73, abs=5e-3)
    assert [neuron[n].grad for n in ("w0", "w1", "w2")] == pytest.approx([-0.20, -0.39, 0.20], abs=5e-3)
    assert [neuron[n].grad for n in ("x0", "x1")] == pytest.approx([0.39, -0.59], abs=5e-3)

    mx = {w.name: w for w in circuit("max").wires}
    assert mx["f = 2·s"].value == -20
    assert [mx[n].grad for n in "xyzw"] == [-8, 6, 2, 0]


def wire_rows(output):
    """{wire: (value, gradient)} from the wires table the CLI prints."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 3 and re.fullmatch(r"-?\d+\.\d\d", cells[1]):
            rows[cells[0]] = (cells[1], cells[2])
    return rows


@pytest.mark.parametrize(
    "name, expected",
    [
        (
            "add-mul",
            {"x": ("-2.00", "-4.00"), "y": ("5.00", "-4.00"), "z": ("-4.00", "3.00"), "f = q·z": ("-12.00", "1.00")},
        ),
        (
            "sigmoid-neuron",
            {
                "w0": ("2.00", "-0.20"),
                "w1": ("-3.00", "-0.39"),
                "w2": ("-3.00", "0.20"),
                "x0": ("-1.00", "0.39"),
                "x1": ("-2.00", "-0.59"),
                "f = σ(s)": ("0.73", "1.00"),
            },
        ),
        (
            "max",
            {
                "x": ("3.00", "-8.00"),
                "y": ("-4.00", "6.00"),
                "z": ("2.00", "2.00"),
                "w": ("-1.00", "0.00"),
                "f = 2·s": ("-20.00", "1.00"),
            },
        ),
    ],
)
def test_cli_prints_the_circuits_to_two_decimals(name, expected):
    result = run("backprop", "--circuit", name)
    assert result.exit_code == 0, result.output
    rows = wire_rows(result.output)
    for wire, pair in expected.items():
        assert rows[wire] == pair


def test_cli_backprop_refuses_an_unknown_circuit_and_a_missing_config():
    result = run("backprop", "--circuit", "mux")
    assert result.exit_code == 2 and "add-mul" in result.output
    assert run("backprop").exit_code == 2


def test_cli_backprop_prints_the_engines_gradients_for_a_config():
    from nncli.backprop.trace import trace_config
    from nncli.config import load_config
    from nncli.nn.network import build_network

    result = run("backprop", SPIRAL, "--samples", "2", "--seed", "3")
    text = " ".join(result.output.split())
    for gate in ("add b2", "mul W2", "relu", "add b1", "mul W1", "softmax loss", "0.5·l2·Σ‖W‖² (l2 0.001)"):
        assert f"{gate} ─" in result.output
    config = load_config(SPIRAL)
    t, _ = trace_config(config, 2, 3)  # the same two samples and weights the command used
    engine = build_network(config, 2, 3, rng=3, dtype=np.float64)
    engine.loss(t.X, t.y, need_dx=True)
    db2 = ", ".join(f"{v:.4g}" for v in engine.grads["b2"])
    dx = "], [".join(", ".join(f"{v:.4g}" for v in row) for row in engine.dx)
    assert f"db2 = 3 [{db2}]" in text
    assert f"dx = 2×2 [[{dx}]]" in text
    assert "numerical gradient check" in text and re.search(r"│ W1 +│ 2×100 │ +\S+ │ +1e-06 │ +200 │", result.output)


def test_graph_dot_parses_with_one_node_per_gate():
    result = run("graph", SPIRAL, "--format", "dot")
    assert result.exit_code == 0, result.output
    (dot,) = pydot.graph_from_dot_data(result.output)
    labels = {n.get_name().strip('"'): n.get_label().strip('"') for n in dot.get_nodes()}
    gates = [name for name, n in ((k, dot.get_node(f'"{k}"')[0]) for k in labels) if "box" in n.get_shape()]
    # mul W1, add b1, relu, mul W2, add b2, softmax loss, the L2 penalty and the + joining it: one box each
    assert sorted(gates) == sorted(["mul_W1", "add_b1", "relu1", "mul_W2", "add_b2", "loss", "reg", "join"])
    assert set(labels) - set(gates) == {"x", "W1", "b1", "W2", "b2", "scores", "y", "L"}
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in dot.get_edge_list()}
    assert {("x", "mul_W1"), ("W1", "mul_W1"), ("W1", "reg"), ("reg", "join"), ("join", "L")} <= edges


def test_graph_of_a_deeper_net_has_a_gate_node_for_every_engine_gate():
    net = Network(5, [8, 7], 4, activation="elu", dropout=0.2, l1=0.01)
    graph = network_graph(net, "deep")
    (dot,) = pydot.graph_from_dot_data(to_dot(graph))
    assert len(dot.get_nodes()) == len(graph.nodes)
    engine_gates = len(net.layers) + len(net.affines)  # each Affine is a mul and an add
    assert len(graph.gates) == engine_gates + 3  # + loss, penalty, +
    assert all(any(n.layer is layer for n in graph.gates) for layer in net.layers)


def test_graph_text_shows_the_chain_of_the_spiral_net():
    result = run("graph", SPIRAL)
    assert result.exit_code == 0, result.output
    chain = (
        "x (N,2) → mul W1 (2,100) → add b1 → relu → mul W2 (100,3) → add b2 → scores (N,3) → softmax loss → "
        "+ 0.5·l2·Σ‖W‖² → L"
    )
    assert chain in result.output
    for line in ("layer 1", "mul W1 (2,100) → (N,100)", "relu → (N,100)", "add b2 (3,) → (N,3)", "softmax loss"):
        assert line in result.output
    three = run("graph", ROOT / "configs/spiral-3layer.yaml")
    assert "relu → mul W2 (100,100) → add b2 → relu → mul W3 (100,3) → add b3 → scores (N,3)" in three.output


def test_graph_of_a_checkpoint(tmp_path):
    from nncli.config import config_to_dict, load_config
    from nncli.training.checkpoint import save_checkpoint

    config = config_to_dict(load_config(SPIRAL, ["model.hidden=[7]"]))
    net = Network(2, [7], 3)
    save_checkpoint(
        tmp_path / "c.npz",
        net.params,
        {"config": config, "classes": [0, 1, 2], "layer_sizes": net.sizes, "epoch": 1, "metrics": {}},
    )
    result = run("graph", tmp_path / "c.npz")
    assert result.exit_code == 0, result.output
    assert "mul W1 (2,7) → add b1 → relu → mul W2 (7,3)" in result.output


def test_graph_writes_dot_and_explains_how_to_render_without_graphviz(tmp_path, monkeypatch):
    result = run("graph", SPIRAL, "--format", "dot", "--out", tmp_path / "g.dot")
    assert result.exit_code == 0 and pydot.graph_from_dot_file(str(tmp_path / "g.dot"))
    monkeypatch.setattr("shutil.which", lambda name: None)
    result = run("graph", SPIRAL, "--out", tmp_path / "g.svg")
    assert result.exit_code == 2
    assert "apt-get install graphviz" in result.output and "brew install graphviz" in result.output
    assert "g.dot already exists" in result.output  # the fallback .dot, too, replaces a file only with --force
    (tmp_path / "g.dot").write_text("mine\n")
    result = run("graph", SPIRAL, "--out", tmp_path / "g.svg")
    assert result.exit_code == 2 and (tmp_path / "g.dot").read_text() == "mine\n"
    result = run("graph", SPIRAL, "--out", tmp_path / "g.svg", "--force")
    assert result.exit_code == 2 and "apt-get install graphviz" in result.output and "dot -Tsvg" in result.output
    assert not (tmp_path / "g.svg").exists() and pydot.graph_from_dot_file(str(tmp_path / "g.dot"))


def test_graph_renders_with_dot_when_it_is_installed(tmp_path, monkeypatch):
    fake = tmp_path / "bin/dot"  # stands in for Graphviz: keeps the DOT it reads, prints its arguments as the image
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\ncat > "$(dirname "$0")/src"\necho "$@"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{__import__('os').environ['PATH']}")
    out = tmp_path / "out"
    out.mkdir()
    result = run("graph", SPIRAL, "--out", out / "g.png")
    assert result.exit_code == 0, result.output
    assert (out / "g.png").read_text().strip() == "-Tpng"
    assert pydot.graph_from_dot_data((fake.parent / "src").read_text())
    (out / "g.png").write_text("mine\n")
    result = run("graph", SPIRAL, "--out", out / "g.png")
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert (out / "g.png").read_text() == "mine\n"
    assert run("graph", SPIRAL, "--out", out / "g.png", "--force").exit_code == 0
    assert [p.name for p in out.iterdir()] == ["g.png"]  # written atomically: no temporary file left behind


def test_graph_rejects_an_unknown_format():
    result = run("graph", SPIRAL, "--format", "svg")
    assert result.exit_code == 2


@pytest.mark.parametrize("fmt", ["dot", "text"])
def test_graph_never_replaces_an_existing_out_file_without_force(tmp_path, fmt):
    config = tmp_path / "c1.yaml"
    config.write_text(SPIRAL.read_text())
    before = config.read_text()
    result = run("graph", config, "--format", fmt, "--out", config)  # a slip: --out names the config itself
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert config.read_text() == before
    target = tmp_path / "g.out"
    target.write_text("mine\n")
    assert run("graph", config, "--format", fmt, "--out", target).exit_code == 2
    assert target.read_text() == "mine\n"
    result = run("graph", config, "--format", fmt, "--out", target, "--force")
    assert result.exit_code == 0, result.output
    assert ("digraph" if fmt == "dot" else "mul W1 (2,100)") in target.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1.yaml", "g.out"]  # no temporary file left behind


def test_backprop_refuses_a_negative_seed():
    result = run("backprop", SPIRAL, "--seed", "-1")
    assert result.exit_code == 2 and "--seed" in result.output and "Traceback" not in result.output


def test_check_table_shows_a_gradient_with_every_coordinate_at_a_kink_as_not_checked():
    from rich.console import Console

    from nncli.cli.gradcheck import check_table
    from nncli.gradcheck.numerical import GradCheck

    console = Console(width=200, record=True)
    console.print(
        check_table([GradCheck("b1", (3,), 0.0, 0, 3, 1e-6), GradCheck("W1", (2, 3), 2e-7, 6, 0, 1e-6)], "checks")
    )
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 4}
    assert "not checked" in rows["b1"] and "pass" not in rows["b1"]
    assert "pass" in rows["W1"] and "2.00e-07" in rows["W1"]
    assert "|a − n| / max(|a|, |n|, s)" in text


@pytest.mark.parametrize("loss", ["l2", "l1", "huber", "logistic"])
def test_trace_of_a_net_with_a_regression_or_attributes_loss_is_the_engines_backward_pass(loss):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 4))
    y = (rng.random((3, 3)) > 0.5).astype(np.float64) if loss == "logistic" else rng.standard_normal((3, 3))
    t = trace(make_net([6], "tanh", loss, 7), X, y, check=True)
    engine = make_net([6], "tanh", loss, 7)
    assert t.loss == pytest.approx(engine.loss(X.copy(), y, need_dx=True), rel=1e-12)
    for name, g in engine.grads.items():
        np.testing.assert_allclose(t.grads[name], g, rtol=1e-12, atol=1e-15)
    assert all(c.status == "pass" for c in t.checks), t.checks
    graph = network_graph(make_net([6], "tanh", loss, 7))
    (y_node,) = [n for n in graph.nodes if n.id == "y"]
    assert y_node.shape == "(N,3)"
