"""A training run's checkpoint: the trainer's weights, its resolved config and data facts, and the state that
resume continues from (nncli.training.checkpoint's format)."""

from pathlib import Path

from nncli.config import config_to_dict
from nncli.training.checkpoint import save_checkpoint
from nncli.training.state import Carried


def write_trainer_checkpoint(trainer, path, row, name=None):
    """Write `trainer`'s checkpoint to `path` with `row` as its metrics; `name` is the file's role in its run
    directory (checkpoint.npz, best.npz), None outside one (then the file's own name)."""
    arrays, counters = trainer.optimizer.state()
    diagnostics = trainer.diagnostics.state() if trainer.diagnostics is not None else None
    carried = Carried(counters, trainer.net.rng.bit_generator.state, trainer.warnings, diagnostics)
    save_checkpoint(
        path,
        dict(trainer.net.params),
        {
            "config": config_to_dict(trainer.config),
            "task": trainer.data.task,
            "classes": list(trainer.data.classes),
            **({"class_weights": trainer.net.class_weights.tolist()} if trainer.net.class_weights is not None else {}),
            "layer_sizes": trainer.net.sizes,
            "epoch": row["epoch"],
            "metrics": row,
            "feature_names": trainer.data.feature_names,
            **({"encoding": trainer.data.encoding.to_meta()} if trainer.data.encoding is not None else {}),
            "data_sha256": trainer.data_sha256,
            "state": trainer.progress.to_meta(carried),
            "run": {"id": trainer.run_id, "file": name or Path(path).name},
        },
        norm_mean=trainer.data.mean,
        norm_std=trainer.data.std,
        optimizer_state=arrays,
        targets=(trainer.data.target_mean, trainer.data.target_std),
        running=trainer.net.running,
    )
