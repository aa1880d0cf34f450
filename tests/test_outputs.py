"""Every file a command writes on request (--out, init's PATH): a missing directory is named, not a traceback."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.errors import NncliError, OutputError
from nncli.training.atomic import atomic_write_text, check_output

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args], terminal_width=400)


@pytest.fixture(scope="module")
def spiral_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "spiral"
    result = run("train", SPIRAL, "train.epochs=1", "data.samples_per_class=20", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


def test_atomic_write_into_a_missing_directory_names_the_target_and_the_directory(tmp_path):
    target = tmp_path / "nodir" / "s.json"
    with pytest.raises(OutputError) as e:
        atomic_write_text(target, "{}")
    assert isinstance(e.value, NncliError)
    assert str(e.value) == f"cannot write {target}: directory {target.parent} does not exist"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match="directory .*afile is not a directory"):
        atomic_write_text(tmp_path / "afile" / "s.json", "{}")
    with pytest.raises(OutputError, match="it is a directory"):
        atomic_write_text(tmp_path, "{}")


def test_check_output_refuses_an_existing_file_unless_forced(tmp_path, spiral_run):
    target = tmp_path / "p.csv"
    check_output(target)
    target.write_text("keep")
    check_output(target, force=True)
    with pytest.raises(OutputError, match="p.csv already exists"):
        check_output(target, force=False)
    (tmp_path / "two.csv").write_text("a,b\n0.1,0.2\n")  # a spiral checkpoint reads 2 features
    result = run("predict", spiral_run / "best.npz", tmp_path / "two.csv", "--out", target)
    assert result.exit_code == 2 and "p.csv already exists; pass --force" in result.output
    assert target.read_text() == "keep"


COMMANDS = {
    "schema": lambda out, run_dir: ["schema", "--out", out],
    "init": lambda out, run_dir: ["init", out],
    "graph dot": lambda out, run_dir: ["graph", SPIRAL, "--format", "dot", "--out", out],
    "graph text": lambda out, run_dir: ["graph", SPIRAL, "--out", out],
    "graph svg": lambda out, run_dir: ["graph", SPIRAL, "--out", out.with_suffix(".svg")],
    "plot": lambda out, run_dir: ["plot", run_dir, "--out", out.with_suffix(".png")],
    "predict": lambda out, run_dir: ["predict", run_dir / "best.npz", ROOT / "data/iris.csv", "--out", out],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_out_into_a_missing_directory_exits_2_naming_it(command, spiral_run, tmp_path):
    args = COMMANDS[command](tmp_path / "nodir" / "out.x", spiral_run)
    if command == "predict":  # a spiral checkpoint reads 2 features: give it a 2-column CSV
        (tmp_path / "two.csv").write_text("a,b\n0.1,0.2\n")
        args[2] = tmp_path / "two.csv"
    result = run(*args)
    assert result.exit_code == 2, result.output
    target = args[-1] if command != "init" else args[1]
    assert f"cannot write {target}: directory {tmp_path / 'nodir'} does not exist" in result.output
    assert "Traceback" not in result.output and ".tmp" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["two.csv"])


def test_plot_out_keeps_an_existing_file_unless_forced_and_writes_the_format_its_name_says(tmp_path):
    pytest.importorskip("matplotlib")
    runner = CliRunner()
    root = Path(__file__).resolve().parent.parent
    run_dir = tmp_path / "r"
    assert (
        runner.invoke(
            app,
            [
                "train",
                str(root / "configs/spiral-2layer.yaml"),
                "train.epochs=2",
                "data.samples_per_class=20",
                "--out",
                str(run_dir),
                "-q",
            ],
        ).exit_code
        == 0
    )
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    result = runner.invoke(app, ["plot", str(run_dir), "--out", str(mine)])
    assert result.exit_code == 2 and "already exists" in result.output and mine.read_bytes() == b"my picture"
    assert runner.invoke(app, ["plot", str(run_dir), "--out", str(mine), "--force"]).exit_code == 0
    assert mine.read_bytes().startswith(b"\x89PNG")
    assert runner.invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "p.svg")]).exit_code == 0
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()[:500]
    result = runner.invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "p.txt")])
    assert result.exit_code == 2 and "must end in .png, .svg, .pdf" in result.output
    result = runner.invoke(app, ["plot", str(run_dir), "--out", str(tmp_path / "q.png"), "--text"])
    assert result.exit_code == 2 and "choose one" in result.output
