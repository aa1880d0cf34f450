"""`nncli plot SWEEP_DIR`: the metric against each swept key, and a terminal summary without matplotlib."""

import json

import pytest
import yaml
from typer.testing import CliRunner

from nncli.cli import app

runner = CliRunner()
SPACE = {
    "optimizer.lr": {"log_uniform": [1.0e-4, 1.0e-1]},
    "model.hidden": {"choice": [[64], [128], [256, 128]]},
    "model.activation": {"choice": ["relu", "tanh"]},
}
TRIALS = [  # number, state, mean, std, epochs, lr, hidden, activation, error
    (0, "complete", 0.90, 0.01, 5, 3.2e-3, [128], "relu", ""),
    (1, "complete", 0.95, 0.02, 5, 1.1e-2, [256, 128], "tanh", ""),
    (2, "pruned", 0.40, 0.05, 2, 2.0e-4, [64], "relu", ""),
    (3, "failed", "", "", 1, 9.0e-2, [64], "tanh", "diverged: loss became nan at epoch 1"),
    (4, "complete", 0.85, 0.03, 5, 5.0e-4, [256, 128], "relu", ""),
]


def write_sweep(path, seeds=(0, 1, 2), metric="val_accuracy"):
    path.mkdir()
    (path / "sweep.yaml").write_text(
        yaml.safe_dump(
            {
                "base": "configs/digits-2layer.yaml",
                "method": "random",
                "trials": 5,
                "metric": metric,
                "seeds": list(seeds),
                "space": SPACE,
                "prune": {"median": {}},
            }
        )
    )
    lines = ["number,state,mean,std,epochs,optimizer.lr,model.hidden,model.activation,error"]
    for n, state, mean, std, epochs, lr, hidden, act, error in TRIALS:
        lines.append(f'{n},{state},{mean},{std},{epochs},{lr!r},"{json.dumps(hidden)}",{act},{error}')
    (path / "trials.csv").write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def sweep_dir(tmp_path):
    return write_sweep(tmp_path / "sweep")


def test_sweep_figure_has_a_panel_per_key_with_the_right_axes(sweep_dir):
    pytest.importorskip("matplotlib")
    from nncli.plot.sweep_plot import sweep_figure

    fig = sweep_figure(sweep_dir)
    lr, hidden, activation = fig.axes
    assert [ax.get_title() for ax in fig.axes] == list(SPACE)
    assert lr.get_xscale() == "log" and hidden.get_xscale() == "linear"
    assert [t.get_text() for t in hidden.get_xticklabels()] == ["[64]", "[128]", "[256, 128]"]
    assert [t.get_text() for t in activation.get_xticklabels()] == ["relu", "tanh"]
    title = fig._suptitle.get_text()
    assert "3 complete, 1 pruned, 1 failed" in title and "over 3 seeds" in title
    markers = [line for line in lr.get_lines() if line.get_marker() == "o"]
    hollow = [x for line in markers if line.get_markerfacecolor() == "none" for x in line.get_xdata()]
    filled = [x for line in markers if line.get_markerfacecolor() != "none" for x in line.get_xdata()]
    assert hollow == [2.0e-4]  # the pruned trial
    assert sorted(filled) == [5.0e-4, 3.2e-3, 1.1e-2]  # complete trials; the failed one (9e-2) is left out
    assert len(lr.collections) >= 1  # error bars (± std over seeds)


def test_plot_writes_a_png_of_a_sweep(sweep_dir, tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    out = tmp_path / "sweep.png"
    result = runner.invoke(app, ["plot", str(sweep_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(out)
    assert image.shape[:2] == (400, 1500)  # three panels side by side
    assert image[..., :3].std() > 0.05  # something is drawn


def test_one_seed_means_no_error_bars(tmp_path):
    pytest.importorskip("matplotlib")
    from nncli.plot.sweep_plot import sweep_figure

    fig = sweep_figure(write_sweep(tmp_path / "one", seeds=[0]))
    assert "over" not in fig._suptitle.get_text()
    assert all(len(ax.collections) == 0 for ax in fig.axes)


def test_without_matplotlib_the_sweep_is_summarized_per_key(sweep_dir, no_matplotlib):
    result = runner.invoke(app, ["plot", str(sweep_dir)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "nncli[plot]" in result.output
    for key in SPACE:
        assert key in result.output
    assert "best trial 1: val_accuracy 0.9500 ± 0.0200" in result.output
    assert "3 complete, 1 pruned, 1 failed" in result.output
    assert not (sweep_dir / "plot.png").exists()


def test_summary_buckets_and_categories_hold_the_best_complete_trial(sweep_dir):
    from nncli.plot.summaries import sweep_summary

    summary = sweep_summary(sweep_dir)
    hidden = {label: (count, value, number) for label, count, value, number in summary["keys"]["model.hidden"]["rows"]}
    assert hidden == {"[64]": (1, None, None), "[128]": (1, 0.90, 0), "[256, 128]": (2, 0.95, 1)}
    lr_rows = summary["keys"]["optimizer.lr"]["rows"]
    assert [row[0] for row in lr_rows] == ["1.0e-04 – 1.0e-03", "1.0e-03 – 1.0e-02", "1.0e-02 – 1.0e-01"]
    assert [row[1:] for row in lr_rows] == [(2, 0.85, 4), (1, 0.90, 0), (1, 0.95, 1)]  # failed trial not counted
    assert summary["best"]["params"]["model.hidden"] == [256, 128]


def test_val_loss_is_minimized(tmp_path):
    from nncli.plot.summaries import sweep_summary

    summary = sweep_summary(write_sweep(tmp_path / "loss", metric="val_loss"))
    assert not summary["maximize"] and summary["best"]["number"] == 4


def test_a_directory_that_is_neither_a_run_nor_a_sweep(tmp_path):
    (tmp_path / "sweep.yaml").write_text("metric: val_accuracy\n")  # no trials.csv: not a sweep yet
    for args in (["plot", str(tmp_path)], ["plot", str(tmp_path), "--text"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert "neither a run directory" in result.output and "trials.csv" in result.output
        assert "Traceback" not in result.output


def test_a_damaged_space_in_sweep_yaml_is_named(tmp_path):
    path = write_sweep(tmp_path / "damaged")
    raw = yaml.safe_load((path / "sweep.yaml").read_text())
    raw["space"]["optimizer.lr"] = {"log_uniform": [0.0, 0.1]}  # the sweep's own parser refuses a log range from 0
    (path / "sweep.yaml").write_text(yaml.safe_dump(raw))
    result = runner.invoke(app, ["plot", str(path), "--text"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "sweep.yaml" in result.output and "space.optimizer.lr: log_uniform needs low > 0" in result.output


@pytest.mark.parametrize(
    "line, needle",
    [
        ("x,complete,0.9,,5,0.01,[64],relu,", "line 7: number 'x' is not a trial number"),
        ("5,done,0.9,,5,0.01,[64],relu,", "line 7: state 'done' is not one of complete, pruned, failed"),
        ("5,complete,0.9,,five,0.01,[64],relu,", "line 7: epochs 'five' is not a whole number"),
        ("5,complete,high,,5,0.01,[64],relu,", "line 7: mean 'high' is not a number"),
        ("5,complete", "line 7: has fewer cells than the header"),
    ],
)
def test_a_damaged_trials_csv_is_named_by_file_and_line(tmp_path, line, needle):
    path = write_sweep(tmp_path / "sweep")
    with open(path / "trials.csv", "a") as f:
        f.write(line + "\n")
    result = runner.invoke(app, ["plot", str(path), "--text"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "trials.csv: " + needle in result.output.replace("\n", "")
