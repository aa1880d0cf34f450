"""Matplotlib, optional (`pip install 'nncli[plot]'`): loaded headless, and a figure written to a picture file."""

from pathlib import Path

from nncli.errors import Hint, MissingExtra, OutputError, require

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}  # a picture's suffix → matplotlib's format


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed); MissingExtra, pointing at the terminal summary,
    when matplotlib is not installed."""
    try:
        matplotlib = require("matplotlib", "plot", "plotting")
    except MissingExtra as e:
        raise MissingExtra(e.message, hints=(Hint.TEXT_SUMMARY,)) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(plt, fig, out_path):
    """Write the figure atomically (a crash never leaves half a picture) in the format its name says (PNG unless
    .svg or .pdf) and free it; return the path."""
    from nncli.training.atomic import atomic_write

    out_path = Path(out_path)
    kind = FORMATS.get(out_path.suffix.lower())
    if kind is None:
        raise OutputError(f"{out_path}: a picture's name must end in {', '.join(FORMATS)}")
    try:
        atomic_write(out_path, lambda f: fig.savefig(f, format=kind, dpi=100))
    finally:
        plt.close(fig)
    return out_path
