"""Using a trained checkpoint: evaluate on labelled data, predict new data, inspect checkpoints and runs."""
