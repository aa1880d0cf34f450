"""The network behind a file, shown rather than run: a config or a checkpoint → network → graph of gates, and a
config → network → one forward and backward pass traced gate by gate."""

from pathlib import Path

import numpy as np

from nncli.backprop.graph import config_graph, network_graph
from nncli.backprop.trace import trace_config
from nncli.config import load_config
from nncli.data.dataset import load_dataset
from nncli.errors import ConfigError, show_value
from nncli.evaluation.evaluate import load_model
from nncli.nn.losses import LOSSES


def load_graph(path, overrides=()):
    """The graph of a checkpoint's network (.npz: its trained weights and sizes) or of the network a YAML config
    describes, with KEY=VALUE `overrides` (sized by the features and classes of the config's data, read for that).
    A checkpoint's network is what was trained: overrides of it are a ConfigError."""
    if Path(path).suffix == ".npz":
        if overrides:
            raise ConfigError(
                f"overrides ({', '.join(map(show_value, overrides))}) change a config; {path} is a checkpoint, "
                "whose network is fixed by its training"
            )
        net, _, config = load_model(path)
        return network_graph(net, config.name)
    config = load_config(path, overrides)
    data = load_dataset(config.data, config.seed, np.float64, LOSSES[config.loss].task)
    return config_graph(config, data.num_features, data.num_classes)


def trace_file(path, samples=2, seed=None, overrides=()):
    """Trace the network of the YAML config at `path` with KEY=VALUE `overrides` on `samples` rows of its training
    data (`seed`, default the config's, initializes the weights and picks the rows). Returns (trace, network), as
    `backprop.trace_config`."""
    return trace_config(load_config(path, overrides), samples, seed)
