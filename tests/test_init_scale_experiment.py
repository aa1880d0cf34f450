"""The shipped init-scale experiment (configs/digits-init-scale.yaml and its sweep) does what the README says: the
sweep file validates as the grid of init scales × norms, and eight epochs already split the two nets at the smallest
scale (the plain net stays at chance, the batch-norm net learns)."""

from pathlib import Path

import pytest

from nncli.config import load_config
from nncli.training.trainer import train

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "digits-init-scale.yaml"
SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_shipped_sweep_file_validates(path, tmp_path):
    pytest.importorskip("optuna")
    from nncli.studies.sweep_file import load_sweep

    assert load_sweep(path, output=str(tmp_path / "out")).space


def test_the_init_scale_sweep_is_the_grid_of_scales_from_1e_4_to_1_with_and_without_batchnorm(tmp_path):
    pytest.importorskip("optuna")
    from nncli.studies.sweep_file import load_sweep

    sweep = load_sweep(ROOT / "configs" / "sweeps" / "digits-init-scale.yaml", output=str(tmp_path / "out"))
    assert sweep.method == "grid" and sweep.trials == 10
    space = {p.key: p.args for p in sweep.space}
    assert space == {"model.init_std": [1e-4, 1e-3, 1e-2, 1e-1, 1.0], "model.norm": ["none", "batchnorm"]}
    assert load_config(CONFIG).model.init == "normal"


def test_at_init_std_1e_4_only_the_batchnorm_net_learns(tmp_path):
    accuracy = {}
    for norm in ("none", "batchnorm"):
        config = load_config(CONFIG, ["model.init_std=1e-4", f"model.norm={norm}", "train.epochs=8"])
        accuracy[norm] = train(config, tmp_path / norm)["final"]["val_accuracy"]
    assert accuracy["none"] < 0.2 < 0.7 < accuracy["batchnorm"]
