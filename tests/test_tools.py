"""schema, validate, init, inspect, runs and diff as a user meets them."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app
from nncli.errors import RunError
from nncli.training.checkpoint import FORMAT_VERSION, sha256_of

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    for name, extra in [("a", []), ("b", ["optimizer.lr=0.5", "model.hidden=[20]"])]:
        result = run(
            "train",
            ROOT / "configs/spiral-2layer.yaml",
            "train.epochs=3",
            "data.samples_per_class=30",
            *extra,
            "--out",
            base / name,
            "-q",
        )
        assert result.exit_code == 0, result.output
    return base


@pytest.fixture(scope="module")
def schema():
    result = run("schema")
    assert result.exit_code == 0
    return json.loads(result.stdout)


def test_schema_is_draft_07_with_descriptions_enums_and_defaults(schema):
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    model = schema["definitions"]["ModelConfig"]["properties"]
    assert model["hidden"]["default"] == [100] and model["activation"]["description"]
    assert set(model["activation"]["enum"]) == {"relu", "leaky_relu", "sigmoid", "tanh", "elu"}


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
def test_schema_accepts_every_shipped_config(schema, config):
    jsonschema.validate(yaml.safe_load(config.read_text()), schema)


def test_schema_rejects_an_unknown_key(schema):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"data": {"source": "spiral"}, "optimizer": {"lerning_rate": 0.1}}, schema)


def test_validate_marks_where_values_come_from():
    result = runner.invoke(
        app, ["validate", str(ROOT / "configs/spiral-2layer.yaml"), "optimizer.lr=0.3"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 4}
    assert "override" in lines["optimizer.lr"] and "0.3" in lines["optimizer.lr"]
    assert "file" in lines["model.hidden"] and "default" in lines["optimizer.momentum"]


def test_validate_reports_mistakes_like_train(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: {source: spiral}\nmodel: {activation: relux}\n")
    result = run("validate", path)
    assert result.exit_code == 2 and "model.activation" in result.output


@pytest.mark.parametrize("template", ["spiral", "digits", "csv"])
def test_init_writes_a_config_that_validates_and_never_overwrites(tmp_path, template):
    path = tmp_path / f"{template}.yaml"
    assert run("init", path, "--template", template).exit_code == 0
    assert path.read_text().startswith("# yaml-language-server: $schema=schema.json")
    assert (tmp_path / "schema.json").exists()
    assert run("validate", path).exit_code == 0
    before = path.read_text()
    result = run("init", path, "--template", template)
    assert result.exit_code == 2 and "already exists" in result.output and path.read_text() == before


def test_init_unknown_template(tmp_path):
    result = run("init", tmp_path / "x.yaml", "--template", "mnist")
    assert result.exit_code == 2 and "spiral, digits, csv" in result.output


def test_inspect_shows_layers_metrics_and_hash(two_runs):
    path = two_runs / "a" / "best.npz"
    result = run("inspect", path, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["sha256"] == sha256_of(path) and info["format_version"] == FORMAT_VERSION
    assert [(layer["name"], layer["shape"]) for layer in info["layers"]] == [
        ("W1", [2, 100]),
        ("b1", [100]),
        ("W2", [100, 3]),
        ("b2", [3]),
    ]
    assert info["parameters"] == 603 and "val_accuracy" in info["metrics"]
    assert run("inspect", path).exit_code == 0


def test_inspect_refuses_a_bad_file(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"junk")
    assert run("inspect", bad).exit_code == 2


def test_runs_table_sorted(two_runs):
    from nncli.evaluation.inspection import list_runs

    rows = list_runs(two_runs, "best_val_accuracy")
    accs = [r["best_val_accuracy"] for r in rows]
    assert len(rows) == 2 and accs == sorted(accs, reverse=True)
    result = runner.invoke(app, ["runs", str(two_runs)], terminal_width=200)
    assert result.exit_code == 0 and "completed" in result.output
    assert run("runs", two_runs, "--sort", "colour").exit_code == 2


def test_diff_names_the_changed_keys(two_runs):
    from nncli.evaluation.inspection import diff_runs

    result = diff_runs(two_runs / "a", two_runs / "b")
    assert set(result["config"]) == {"optimizer.lr", "model.hidden"}  # output.dir is each run's own path
    assert result["config"]["optimizer.lr"] == (1.0, 0.5)
    assert "best.val_accuracy" in result["metrics"] and result["status"] == ("completed", "completed")
    shown = runner.invoke(app, ["diff", str(two_runs / "a"), str(two_runs / "b")], terminal_width=200)
    assert shown.exit_code == 0 and "status" in shown.output and "epochs run" in shown.output
    same = runner.invoke(app, ["diff", str(two_runs / "a"), str(two_runs / "a")], terminal_width=200)
    assert same.exit_code == 0 and "same config" in same.output and "config differences" not in same.output


def test_plot_writes_a_png_with_decision_regions(two_runs, tmp_path):
    out = tmp_path / "spiral.png"
    result = run("plot", two_runs / "a", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from matplotlib.image import imread

    assert imread(out).shape[1] == 2000  # four panels: loss, accuracy, confusion, decision regions


def test_plot_without_matplotlib_names_the_extra_and_shows_sparklines(two_runs, no_matplotlib):
    result = runner.invoke(app, ["plot", str(two_runs / "a")], terminal_width=200)
    assert result.exit_code == 0
    assert "nncli[plot]" in result.output and "train_loss" in result.output
    assert any(bar in result.output for bar in "▁▂▃▄▅▆▇█")


def test_plot_of_a_folder_that_is_not_a_run(tmp_path):
    result = run("plot", tmp_path, "--text")
    assert result.exit_code == 2 and "metrics" in result.output


def test_shipped_configs_carry_the_schema_modeline_and_the_schema_is_current(schema):
    assert json.loads((ROOT / "configs" / "schema.json").read_text()) == schema
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        assert config.read_text().startswith("# yaml-language-server: $schema=schema.json\n"), config.name


def test_a_long_curve_is_drawn_whole_in_a_fixed_width():
    from nncli.plot.summaries import sparkline

    line = sparkline(list(range(300)), width=40)
    assert len(line) == 40 and line[0] == "▁" and line[-1] == "█"  # the end of the curve is there
    assert sparkline([3.0, 1.0, 2.0]) == "█▁▅"


def test_inspect_and_diff_on_an_80_column_terminal(two_runs):
    inspect = runner.invoke(app, ["inspect", str(two_runs / "a" / "best.npz")], terminal_width=80)
    assert inspect.exit_code == 0
    digest = sha256_of(two_runs / "a" / "best.npz")
    assert digest in "".join(part.strip(" │") for part in inspect.output.split())  # folded, never cut short
    diff = runner.invoke(app, ["diff", str(two_runs / "a"), str(two_runs / "b")], terminal_width=80)
    assert diff.exit_code == 0 and "final.val_accuracy" in diff.output
    assert "layers" not in diff.output and "weight_norm" not in diff.output


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_runs_of_a_folder_that_does_not_exist_or_is_a_file_exits_2_naming_it(tmp_path, kind):
    folder = tmp_path / "nonexist"
    if kind == "file":
        folder.write_text("")
    result = run("runs", folder)
    assert result.exit_code == 2 and str(folder) in result.output.replace("\n", "")
    assert ("no such folder" if kind == "missing" else "is not a folder") in result.output


def test_the_library_refuses_what_the_commands_refuse(tmp_path):
    from nncli.evaluation.inspection import list_runs

    with pytest.raises(RunError, match="no such folder; give the folder that holds the run directories"):
        list_runs(tmp_path / "nonexist")
    with pytest.raises(RunError, match=r"^sort must be one of name, .*, got 'colour'$"):  # the argument, not --sort
        list_runs(tmp_path, "colour")
    result = run("runs", tmp_path, "--sort", "colour")
    assert result.exit_code == 2 and "--sort must be one of name, status" in result.output


def test_missing_data_files_are_warnings_the_library_words(tmp_path):
    from nncli.config import load_config
    from nncli.data.files import missing_files

    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{source: {tmp_path / 'X.npy'}, labels: {tmp_path / 'y.npy'}}}\n")
    warnings = missing_files(load_config(path).data)
    assert [w.split(":")[0] for w in warnings] == ["data.source", "data.labels"]
    assert all("not found" in w and w.endswith("training needs the file") for w in warnings)
    assert missing_files(load_config(ROOT / "configs/spiral-2layer.yaml").data) == []  # a built-in is no file


def test_the_graph_of_a_config_and_of_its_checkpoint_is_one_library_call(two_runs):
    from nncli.evaluation.network import load_graph, trace_file

    from_config = load_graph(ROOT / "configs/spiral-2layer.yaml")
    from_checkpoint = load_graph(two_runs / "a" / "best.npz")
    assert from_config.chain() == from_checkpoint.chain() and "mul W1 (2,100)" in from_config.chain()
    t, net = trace_file(ROOT / "configs/spiral-2layer.yaml", samples=3)
    assert len(t.dx) == 3 and all(check.passed for check in t.checks) and net.sizes == [2, 100, 3]
