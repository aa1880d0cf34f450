"""What a config implies before the first step: the random streams, the metric that picks best.npz, and whether
the model fits in memory at all (refused before anything is allocated)."""

import os

import numpy as np

from nncli.errors import ConfigError
from nncli.nn.metrics import maximized

PARAMETER_COPIES = 5  # theta, grad, update scratch and up to two optimizer state vectors


def seed_streams(seed):
    """Independent generators for (init + dropout, shuffling) derived from the one config seed."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2)]


def monitor_of(config, has_val):
    """The metric that picks best.npz (and drives early stopping): name and whether larger is better."""
    es = config.train.early_stopping
    name = es.monitor if es is not None else ("val_loss" if has_val else "train_loss")
    if name.startswith("val_") and not has_val:
        name = name.replace("val_", "train_")
    return name, maximized(name)


def monitor_fallback(config, monitor):
    """A warning when early stopping's val_* monitor is followed as its train_* twin (no validation data), else None."""
    es = config.train.early_stopping
    if es is None or es.monitor == monitor:
        return None
    return (
        f"train.early_stopping.monitor: {es.monitor} needs a validation split and this data has "
        f"none (data.val_fraction 0); early stopping and best.npz follow {monitor} instead"
    )


def check_model_fits(config, input_dim, num_classes):
    """Refuse, before allocating anything, a model whose parameters and training state cannot fit in memory."""
    sizes = [input_dim, *config.model.hidden, num_classes]
    params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    need = params * np.dtype(config.train.dtype).itemsize * PARAMETER_COPIES
    try:
        have = os_memory_bytes()
    except (ValueError, OSError, AttributeError):
        return
    if need > have:
        raise ConfigError(
            f"model.hidden: {config.model.hidden} gives {params:,} parameters, which need about "
            f"{need / 2**30:,.1f} GiB to train in {config.train.dtype}; this machine has "
            f"{have / 2**30:,.1f} GiB"
        )


def os_memory_bytes():
    """This machine's physical memory (POSIX sysconf; raises ValueError, OSError or AttributeError elsewhere)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
