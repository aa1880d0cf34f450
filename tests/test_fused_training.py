"""Training with the update folded into the backward pass (nncli.optim.fused) is training without it, to float
rounding: the same metrics, the same weights, and after each epoch the real gradient of its last batch."""

import numpy as np
import pytest

import nncli.training.trainer as trainer_module
from nncli import blas
from nncli.config import config_from_dict
from nncli.training.trainer import Trainer

pytestmark = pytest.mark.skipif(not blas.HAVE_GEMM, reason="NumPy's OpenBLAS not found: nothing is folded")


def config(optimizer, norm="none"):
    return config_from_dict(
        {
            "data": {"source": "spiral", "samples_per_class": 40},
            "model": {"hidden": [16, 12], "dropout": 0.1, "norm": norm},
            "regularization": {"l2": 1e-3},
            "optimizer": {"name": optimizer, "lr": 0.05},
            "train": {"epochs": 3, "batch_size": 32, "dtype": "float64", "diagnostics": True},
        }
    )


def train(cfg, run_dir, fold=True, monkeypatch=None):
    if not fold:
        monkeypatch.setattr(trainer_module, "fused_update", lambda *args: None)
    trainer = Trainer(cfg, run_dir)
    summary = trainer.run()
    monkeypatch.undo()
    return trainer, summary


@pytest.mark.parametrize("optimizer,norm", [("momentum", "none"), ("sgd", "batchnorm"), ("momentum", "layernorm")])
def test_folded_training_matches_the_plain_step(tmp_path, monkeypatch, optimizer, norm):
    folded, summary = train(config(optimizer, norm), tmp_path / "folded", monkeypatch=monkeypatch)
    plain, want = train(config(optimizer, norm), tmp_path / "plain", fold=False, monkeypatch=monkeypatch)
    assert summary["status"] == want["status"] == "completed"
    for key in ("train_loss", "val_loss", "val_accuracy"):
        assert summary["best"][key] == pytest.approx(want["best"][key], rel=1e-9), key
    np.testing.assert_allclose(folded.net.theta, plain.net.theta, rtol=1e-9, atol=1e-12)
    # the epoch's last step ran unfused: the gradient the diagnostics and histograms read is that batch's own
    np.testing.assert_allclose(folded.net.grad, plain.net.grad, rtol=1e-7, atol=1e-10)
    assert folded.optimizer.t == plain.optimizer.t
