"""Using a trained checkpoint: evaluate on labelled data, predict new data, inspect checkpoints and runs, and show
the network of a checkpoint or a config as a graph of gates or a traced backward pass."""
