"""What a resumed run says as it starts: where it starts ("resuming runs/x at epoch 38 + 12 steps, 62 epochs to go"),
or that it has nothing left to train and the command that trains on. Shared by `train` and `train --seeds`."""

import sys

from rich.markup import escape

from nncli.cli.app import out
from nncli.cli.render import survive_closed


def started_at(trainer, progress, quiet, lead="", resume_dir=None, how=True):
    """Say where a resumed run starts, or that it has nothing left to train and (with `how`) the command that
    trains on, resuming `resume_dir` (default: the run's own); said even with --quiet, as it is the answer. Moves
    `progress` to where the run stands; returns the run's ResumePoint."""
    from nncli.training.resume import resume_point

    point = resume_point(trainer)
    if progress.bar is not None:
        progress.bar.update(min(point.epochs_done, point.epochs))
    if not point.finished:
        if not quiet:
            survive_closed(sys.stdout, out.print, f"[bold]{escape(lead + point.words())}[/]", soft_wrap=True)
        return point
    survive_closed(sys.stdout, out.print, escape(lead + point.words()), soft_wrap=True)
    if how:
        said = how_to_train_on(trainer.config.train.early_stopping, point, resume_dir or trainer.run_dir)
        survive_closed(sys.stdout, out.print, escape(said), soft_wrap=True)
    return point


def how_to_train_on(es, point, resume_dir):
    """The command that extends a finished run: more train.epochs, and a longer patience after early stopping."""
    command = f"nncli train --resume {resume_dir}"
    epochs = f" train.epochs={2 * point.epochs}" if point.epochs_done >= point.epochs else ""
    if point.stopped is not None:
        more = f" train.early_stopping.patience={2 * es.patience} --force"
        return f"to train on, raise its patience (a change --force accepts), e.g. {command}{epochs}{more}"
    return f"to train on, raise train.epochs, e.g. {command}{epochs}"
