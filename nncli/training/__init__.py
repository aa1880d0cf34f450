"""The training loop and everything it writes: trainer, resume state, signals, diagnostics, run directory,
checkpoints, atomic writes.
"""
