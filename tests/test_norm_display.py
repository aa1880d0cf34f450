"""The norm everywhere a user looks: `graph` draws the norm gate with gamma_i and beta_i, `backprop` traces it, the
diagnostics show the pre-activations before and after it, `inspect` tells parameters from running statistics, and
`diff` shows model.norm as a config key (a run from before normalization diffs as norm none)."""

import json
import signal

import numpy as np
import pydot
import pytest
import yaml
from typer.testing import CliRunner

from nncli.backprop.gates import record
from nncli.backprop.graph import network_graph, to_dot
from nncli.backprop.trace import trace
from nncli.cli import app
from nncli.config import config_from_dict
from nncli.evaluation.inspection import describe_checkpoint, diff_runs
from nncli.nn.network import Network
from nncli.nn.normalization import NORMS
from nncli.training.diagnostics import Diagnostics
from nncli.training.rundir import read_metrics
from nncli.training.trainer import Trainer

runner = CliRunner()
BASE = {
    "name": "spiral-small",
    "data": {"source": "spiral", "samples_per_class": 30},
    "model": {"hidden": [16, 8]},
    "train": {"epochs": 4, "batch_size": 16},
    "optimizer": {"lr": 0.1},
}


def raw_config(**model):
    raw = json.loads(json.dumps(BASE))
    raw["model"].update(model)
    return raw


def write_config(tmp_path, name="c.yaml", **model):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw_config(**model)))
    return path


def train(run_dir, **model):
    Trainer(config_from_dict(raw_config(**model)), run_dir).run()
    return run_dir


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def make_net(norm, hidden=(6, 5), seed=3, **kw):
    return Network(4, list(hidden), 3, norm=norm, l2=0.01, dtype=np.float64, rng=seed, **kw)


@pytest.mark.parametrize("norm", list(NORMS))
def test_the_graph_has_a_norm_gate_between_add_b_and_the_activation_with_gamma_and_beta(norm):
    g = network_graph(make_net(norm, norm_momentum=0.8, norm_eps=1e-3))
    labels = [n.label for n in g.gates]
    assert labels[:8] == ["mul W1", "add b1", norm, "relu", "mul W2", "add b2", norm, "relu"]
    assert labels[8:10] == ["mul W3", "add b3"]  # the scores' affine has no norm
    nodes = {n.id: n for n in g.nodes}
    for i, width in ((1, 6), (2, 5)):
        gate = nodes[f"{norm}{i}"]
        assert gate.inputs == [f"add_b{i}", f"gamma{i}", f"beta{i}"]
        assert nodes[f"gamma{i}"].kind == nodes[f"beta{i}"].kind == "param"
        assert nodes[f"gamma{i}"].shape == f"({width},)"
        momentum = ", momentum 0.8" if norm == "batchnorm" else ""
        assert gate.detail == f"gamma{i}, beta{i} ({width},); eps 0.001{momentum}"
    assert "reg" in nodes and nodes["reg"].inputs == ["W1", "W2", "W3"]  # gamma and beta are never regularized
    dot = pydot.graph_from_dot_data(to_dot(g))[0]
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in dot.get_edges()}
    assert {("gamma1", f"{norm}1"), ("beta1", f"{norm}1"), ("add_b1", f"{norm}1"), (f"{norm}1", "relu1")} <= edges
    assert "→ add b1 → " + norm + " → relu → mul W2" in g.chain()


def test_graph_of_a_config_and_of_its_checkpoint_show_the_batchnorm_gate(tmp_path):
    shown = "batchnorm gamma1, beta1 (16,); eps 1e-05, momentum 0.9 → (N,16)"
    result = run("graph", write_config(tmp_path, norm="batchnorm"))
    assert result.exit_code == 0, result.output
    assert shown in result.output and "batchnorm gamma2, beta2 (8,)" in result.output
    train(tmp_path / "r", norm="batchnorm")
    result = run("graph", tmp_path / "r" / "checkpoint.npz")
    assert result.exit_code == 0 and shown in result.output
    result = run("graph", tmp_path / "r" / "checkpoint.npz", "--format", "dot")
    assert result.exit_code == 0 and '"gamma2" -> "batchnorm2";' in result.output


@pytest.mark.parametrize("norm", list(NORMS))
def test_the_backprop_trace_shows_the_norm_gate_and_what_it_sends_on(norm):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 4)), rng.integers(3, size=4)
    t = trace(make_net(norm), X, y)
    engine = make_net(norm)
    engine.loss(X.copy(), y, need_dx=True)
    steps = {s.gate: s for s in t.steps}
    for i in (1, 2):
        step = next(s for s in t.steps if s.gate.startswith(f"{norm} gamma{i}, beta{i}"))
        assert step.rule == NORMS[norm].rule
        assert list(step.downstream) == [f"dgamma{i}", f"dbeta{i}", f"dz{i}"]
        np.testing.assert_allclose(step.downstream[f"dgamma{i}"], engine.grads[f"gamma{i}"], rtol=1e-12)
        np.testing.assert_allclose(step.downstream[f"dbeta{i}"], engine.grads[f"beta{i}"], rtol=1e-12)
        add = steps[f"add b{i}"]
        np.testing.assert_array_equal(add.upstream, step.downstream[f"dz{i}"])  # dz_i flows on to add b_i
        after = t.steps[t.steps.index(step) - 1]  # the activation, one step earlier in backward order
        np.testing.assert_array_equal(step.upstream, after.downstream[f"dn{i}"])
        np.testing.assert_array_equal(t.data_grads[f"gamma{i}"], engine.grads[f"gamma{i}"])
    checked = {c.name: c for c in t.checks}
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(checked)
    assert all(c.passed for c in t.checks), [(c.name, c.max_rel_error) for c in t.checks]


def test_nncli_backprop_of_a_layernorm_config_prints_the_gate_its_rule_and_the_checks(tmp_path):
    result = run("backprop", write_config(tmp_path, norm="layernorm"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "layernorm gamma1, beta1 (16,); eps 1e-05" in text
    assert "layer norm: dx = (dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) / σ" in text
    for name in ("dgamma1 =", "dbeta1 =", "dz1 =", "dn1 =", "dgamma2", "dbeta2"):
        assert name in text
    assert "Traceback" not in result.output


@pytest.mark.parametrize("norm", list(NORMS))
def test_diagnostics_show_the_pre_activation_before_and_after_the_norm(norm):
    """A small initial scale shrinks z = h·W + b; the norm gives it back mean beta and std gamma (each unit's or row's
    std divided by √(var + eps), so a scale far below √eps ≈ 0.003 stays small: eps is what the norm cannot undo)."""
    net = make_net(norm, hidden=(7, 5), init="normal", init_std=0.01, dropout=0.3)
    net.params["gamma1"][...] = 2.0
    net.params["beta1"][...] = 0.5
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((32, 4)), rng.integers(3, size=32)
    diagnostics = Diagnostics(net)
    with record(net.affines) as tape:  # what each affine was given, copied as it passed
        net.loss(X, y)
    diagnostics.after_forward()
    diagnostics.before_last_update()
    layers, _ = diagnostics.end_epoch({"epoch": 1})
    for i, affine in enumerate(net.affines[:2], start=1):
        z = tape.of(affine, "forward")[0].value @ affine.W + affine.b
        assert layers[f"W{i}"]["preact_mean"] == pytest.approx(z.mean(), rel=1e-9)
        assert layers[f"W{i}"]["preact_std"] == pytest.approx(z.std(), rel=1e-9)
    z = X @ net.params["W1"] + net.params["b1"]
    entry = layers["W1"]
    assert entry["preact_std"] < 0.05
    axis = 0 if norm == "batchnorm" else 1
    assert entry["normed_mean"] == pytest.approx(0.5, abs=1e-9)
    expected = 2.0 * np.sqrt(np.mean(z.var(axis=axis) / (z.var(axis=axis) + 1e-5)))
    assert entry["normed_std"] == pytest.approx(expected, rel=1e-9) and entry["normed_std"] > 1.9
    assert "preact_mean" not in layers["W3"]  # the scores' affine has no norm


def test_diagnostics_rows_of_a_norm_run_survive_an_interrupted_resume_bit_identically(tmp_path):
    cfg = config_from_dict(raw_config(norm="batchnorm", dropout=0.2))
    Trainer(cfg, tmp_path / "straight").run()
    trainer = Trainer(cfg, tmp_path / "resumed")

    def on_epoch(row):
        if row["epoch"] == 2:
            trainer.stop_signal = signal.SIGINT  # stops one step into epoch 3

    trainer.on_epoch = on_epoch
    assert trainer.run()["status"] == "interrupted"
    Trainer(cfg, tmp_path / "resumed", resume=True).run()
    rows = [
        [{k: v for k, v in r.items() if k != "seconds"} for r in read_metrics(tmp_path / d)]
        for d in ("straight", "resumed")
    ]
    assert rows[0] == rows[1] and len(rows[0]) == 4
    for i in (1, 2):
        assert {"preact_mean", "preact_std", "normed_mean", "normed_std"} <= set(rows[0][-1]["layers"][f"W{i}"])


def test_inspect_lists_gamma_beta_as_parameters_and_running_statistics_apart(tmp_path):
    train(tmp_path / "r", norm="batchnorm")
    ckpt = tmp_path / "r" / "checkpoint.npz"
    info = describe_checkpoint(ckpt)
    kinds = {layer["name"]: layer["kind"] for layer in info["layers"]}
    assert kinds["gamma1"] == kinds["beta2"] == kinds["W1"] == "parameter"
    for name in ("running_mean1", "running_var1", "running_mean2", "running_var2"):
        assert kinds[name] == "running statistic"
    trainable = Network(2, [16, 8], 3, norm="batchnorm").theta.size  # W, b, gamma and beta
    assert info["parameters"] == trainable == 2 * 16 + 16 * 8 + 8 * 3 + 16 + 8 + 3 + 2 * (16 + 8)
    shown = run("inspect", ckpt)
    assert shown.exit_code == 0
    assert any("running_var2" in line and "running statistic" in line for line in shown.output.splitlines())
    assert any("gamma1" in line and "parameter" in line for line in shown.output.splitlines())
    cells = ([c.strip() for c in line.split("│")[1:3]] for line in shown.output.splitlines())
    assert ["parameters", str(trainable)] in cells  # the row itself, however wide the sha256 makes the table
    as_json = json.loads(run("inspect", ckpt, "--json").output)
    assert {"name": "running_mean1", "shape": [16], "count": 16, "dtype": "float32", "kind": "running statistic"} in (
        as_json["layers"]
    )


def strip_norm_keys(run_dir):
    """Make run_dir look written before normalization: no model.norm* in its checkpoints or config.yaml, format 3."""
    for name in ("checkpoint.npz", "best.npz"):
        with np.load(run_dir / name) as npz:
            arrays = dict(npz)
        meta = json.loads(str(arrays["meta"]))
        for key in ("norm", "norm_momentum", "norm_eps"):
            del meta["config"]["model"][key]
        meta["format_version"] = 3
        arrays["meta"] = np.array(json.dumps(meta))
        with open(run_dir / name, "wb") as f:
            np.savez(f, **arrays)
    text = (run_dir / "config.yaml").read_text()
    (run_dir / "config.yaml").write_text("\n".join(line for line in text.splitlines() if "norm" not in line) + "\n")


@pytest.fixture(scope="module")
def norm_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("norm-runs")
    train(root / "plain")
    train(root / "old")
    strip_norm_keys(root / "old")
    train(root / "bn", norm="batchnorm")
    train(root / "bn-slow", norm="batchnorm", norm_momentum=0.5)
    return root


def test_diff_shows_model_norm_and_its_settings_as_config_keys(norm_runs):
    assert diff_runs(norm_runs / "plain", norm_runs / "bn")["config"] == {"model.norm": ("none", "batchnorm")}
    assert diff_runs(norm_runs / "bn", norm_runs / "bn-slow")["config"] == {"model.norm_momentum": (0.9, 0.5)}
    shown = run("diff", norm_runs / "plain", norm_runs / "bn")
    assert shown.exit_code == 0
    assert any(
        "model.norm" in line and '"none"' in line and '"batchnorm"' in line for line in shown.output.splitlines()
    )


def test_a_run_from_before_normalization_diffs_as_norm_none(norm_runs):
    from nncli.training.checkpoint import load_checkpoint

    assert "norm" not in load_checkpoint(norm_runs / "old" / "checkpoint.npz").config["model"]
    assert diff_runs(norm_runs / "old", norm_runs / "plain")["config"] == {}
    assert diff_runs(norm_runs / "old", norm_runs / "bn")["config"] == {"model.norm": ("none", "batchnorm")}
    shown = run("diff", norm_runs / "old", norm_runs / "plain")
    assert shown.exit_code == 0 and "same config" in shown.output


def test_diff_of_a_run_without_a_checkpoint_still_shows_every_key_it_lacks(norm_runs, tmp_path):
    """Defaults fill in keys a run's nncli did not know, never a whole config that is missing."""
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(norm_runs / "plain", bare)
    (bare / "checkpoint.npz").unlink()
    changed = diff_runs(bare, norm_runs / "plain")["config"]
    assert changed["model.norm"] == (None, "none") and changed["optimizer.lr"] == (None, 0.1)


def test_the_setup_table_names_the_norm(tmp_path):
    result = run("train", write_config(tmp_path, norm="batchnorm"), "--out", tmp_path / "r")
    assert result.exit_code == 0, result.output
    assert "batchnorm (momentum 0.9, eps 1e-05), loss softmax" in " ".join(result.output.replace("│", " ").split())
    plain = run("train", write_config(tmp_path, "p.yaml"), "--out", tmp_path / "p")
    assert "norm" not in plain.output.split("regularization")[0]
