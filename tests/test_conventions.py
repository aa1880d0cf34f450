"""What a user expects of any command line: -h, completion, readable help, NO_COLOR / FORCE_COLOR, a default config,
run directories where a checkpoint is expected, and never overwriting a file without --force."""

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app

ROOT = Path(__file__).resolve().parent.parent
SPIRAL = ROOT / "configs/spiral-2layer.yaml"
runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update({"PYTHONPATH": str(ROOT), "COLUMNS": "100", "TERM": "xterm-256color", **extra})
    return env


def on_a_terminal(*args, columns=None, exit_code=None, **env):
    """stdout and stderr of `nncli ARGS` run on a pseudo-terminal (`columns` wide if given), as bytes; with
    `exit_code`, the command must end with it."""
    main, child = pty.openpty()
    if columns is not None:
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
        env["COLUMNS"] = str(columns)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nncli", *map(str, args)], stdin=child, stdout=child, stderr=child, env=_env(**env)
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    code = proc.wait(timeout=60)
    output = b"".join(chunks)
    assert exit_code is None or code == exit_code, output
    return output


@pytest.mark.parametrize("command", [(), ("train",), ("eval",), ("inspect",), ("sweep",), ("validate",)])
def test_dash_h_is_help_everywhere(command):
    result = run(*command, "-h")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "No such option" not in result.output
    assert result.output == run(*command, "--help").output


def test_help_shows_no_bool_after_flags_and_arguments_in_capitals():
    for command in ("train", "inspect", "eval", "runs", "diff", "init", "validate"):
        text = run(command, "--help").output
        assert "<bool>" not in text, command
        assert "{" not in text.splitlines()[1], text  # the usage line: CHECKPOINT, not {checkpoint}
    assert "[OPTIONS] [CONFIG] [OVERRIDES]..." in run("train", "--help").output
    assert "[OPTIONS] CHECKPOINT" in run("inspect", "--help").output
    assert "[OPTIONS] RUN_A RUN_B" in run("diff", "--help").output
    assert "<bool>" not in run("--help").output
    assert "Missing argument 'CHECKPOINT'" in run("inspect").output


def test_shell_completion_is_on():
    top = run("--help").output
    assert "--install-completion" in top and "--show-completion" in top
    script = run("--show-completion", "bash", prog_name="nncli")
    assert script.exit_code == 0 and "_NNCLI_COMPLETE=complete_bash" in script.output
    env = {"_NNCLI_COMPLETE": "complete_bash", "COMP_WORDS": "nncli tr", "COMP_CWORD": "1"}
    assert run(prog_name="nncli", env=env).output.split() == ["train"]


@pytest.mark.parametrize(
    "args",
    [
        ("validate", SPIRAL, "train.epochs=3"),  # dim and bold rows, an italic title
        ("validate", SPIRAL, "train.patience=3"),  # a bold error head on stderr
        ("train", "--help"),  # typer's own console
    ],
)
def test_no_color_removes_every_escape_code_on_a_terminal(args):
    styled = on_a_terminal(*args)
    assert b"\x1b[" in styled  # on a terminal, without NO_COLOR, there is style to remove
    plain = on_a_terminal(*args, NO_COLOR="1")
    assert b"\x1b" not in plain, plain[:400]
    assert b"train." in plain or b"Usage" in plain


def test_force_color_styles_output_through_a_pipe():
    args = [sys.executable, "-m", "nncli", "validate", str(SPIRAL)]
    piped = subprocess.run(args, capture_output=True, env=_env(), timeout=60)
    assert piped.returncode == 0 and b"\x1b" not in piped.stdout
    forced = subprocess.run(args, capture_output=True, env=_env(FORCE_COLOR="1"), timeout=60)
    assert forced.returncode == 0 and b"\x1b[" in forced.stdout


def test_validate_marks_only_the_keys_an_override_set():
    result = run("validate", SPIRAL, "train.early_stopping={patience: 3}", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): line.split("│")[3].strip() for line in result.output.splitlines() if "│" in line
    }
    assert rows["train.early_stopping.patience"] == "override"
    assert rows["train.early_stopping.monitor"] == "default"
    assert rows["train.early_stopping.min_delta"] == "default"
    assert rows["train.epochs"] == "file"


SMALL = ("train.epochs=3", "data.samples_per_class=30", "-q")


def test_a_bare_train_uses_the_nncli_yaml_init_wrote_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    wrote = run("init")
    assert wrote.exit_code == 0 and "train it with: nncli train\n" in wrote.output
    result = run("train", *SMALL, "--out", "r")
    assert result.exit_code == 0, result.output
    assert "no CONFIG given: training ./nncli.yaml" in result.output
    assert (tmp_path / "r" / "summary.json").exists()
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["epochs"] == 3  # the override held


def test_a_bare_train_without_nncli_yaml_still_asks_for_a_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("train")
    assert result.exit_code == 2 and "missing CONFIG" in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "mine"
    result = run("train", SPIRAL, *SMALL, "--out", path)
    assert result.exit_code == 0, result.output
    return path


def test_eval_of_a_run_directory_evaluates_its_best_npz_and_says_so(run_dir):
    result = run("eval", run_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checkpoint"] == str(run_dir / "best.npz")
    assert f"evaluating {run_dir / 'best.npz'}" in result.stderr.replace("\n", "")
    assert json.loads(result.stdout) == json.loads(run("eval", run_dir / "best.npz", "--json").stdout)


def test_eval_of_a_directory_without_best_npz_says_what_it_holds(tmp_path):
    result = run("eval", tmp_path)
    assert result.exit_code == 2 and "without best.npz" in result.output and str(tmp_path) in result.output
    (tmp_path / "seeds.json").write_text("{}")
    assert "a seed study" in run("eval", tmp_path).output


def test_runs_names_a_killed_run_as_it_names_a_finished_one(run_dir, tmp_path):
    import shutil

    killed = tmp_path / "killed"
    shutil.copytree(run_dir, killed)
    (killed / "summary.json").unlink()  # what kill -9 leaves: metrics and checkpoints, no summary
    shutil.copytree(run_dir, tmp_path / "finished")
    rows = {Path(r["path"]).name: r for r in json.loads(run("runs", tmp_path, "--json").stdout)}
    assert rows["killed"]["status"] != rows["finished"]["status"]
    assert rows["killed"]["name"] == rows["finished"]["name"] == "spiral-2layer"


def test_inspect_shows_a_mid_epoch_position_as_eval_does(tmp_path):
    import signal

    from nncli.config import load_config
    from nncli.training.trainer import Trainer

    cfg = load_config(SPIRAL, ["train.epochs=4", "data.samples_per_class=30", "train.batch_size=16"])
    trainer = Trainer(cfg, tmp_path / "r")
    trainer.on_epoch = lambda row: setattr(trainer, "stop_signal", signal.SIGINT) if row["epoch"] == 1 else None
    assert trainer.run()["status"] == "interrupted"
    ckpt = tmp_path / "r" / "checkpoint.npz"
    position = json.loads(run("eval", ckpt, "--json").stdout)["position"]
    assert position.startswith("epoch 1 + ") and position.endswith(" of epoch 2")
    shown = run("inspect", ckpt, env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and position in shown.output


def test_schema_out_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "schema.json"
    target.write_text("mine")
    result = run("schema", "--out", target)
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "mine"
    assert run("schema", "--out", target, "--force").exit_code == 0
    assert json.loads(target.read_text())["$schema"].startswith("http://json-schema.org/draft-07")


def test_init_refuses_to_overwrite_without_force_and_replaces_with_it(tmp_path):
    target = tmp_path / "c.yaml"
    target.write_text("mine")
    result = run("init", target)
    assert result.exit_code == 2 and "already exists" in result.output and "--force" in result.output
    assert target.read_text() == "mine"
    assert run("init", target, "--template", "digits", "--force").exit_code == 0
    assert yaml.safe_load(target.read_text())["data"]["source"] == "digits"
