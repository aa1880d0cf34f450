"""The run directory: where a training run writes its config, metrics, checkpoints and summary.

Layout: config.yaml, metrics.jsonl, metrics.csv, checkpoint.npz, best.npz, summary.json.
A directory that already holds a run is never reused silently.
"""

import csv
import io
import json
import os
from pathlib import Path

from nncli.errors import ConfigError, Hint, RunError
from nncli.training.atomic import atomic_write_json, atomic_write_text, jsonable

RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoint.npz", "best.npz", "summary.json")
METRIC_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds")


def holds_run(path):
    """True when `path` already contains any file a run writes."""
    path = Path(path)
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


def runs_inside(path):
    """Where the runs are when `path` is a seed study or a sweep rather than one run (for messages), else None."""
    path = Path(path)
    if (path / "seeds.json").exists():
        return f"{path} is a seed study: its runs are {path}/seed-<k>/"
    if (path / "sweep.yaml").exists():
        return f"{path} is a sweep: its runs are {path}/trial-NNNN/seed-<k>/"
    return None


def make_run_dir(path):
    """Create `path` and its parents as a directory, or say in output.dir's terms why it cannot be one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output.dir: {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output.dir: cannot create {path}: {e.strerror or e}") from None
    return path


def prepare_run_dir(path, force=False):
    """Create the run directory; refuse one that holds a run unless `force` (then its run files are replaced)."""
    path = Path(path)
    if runs_inside(path):  # never mix a single run into a study or a sweep, even with force
        raise ConfigError(f"output.dir: {runs_inside(path)}", hints=(Hint.ELSEWHERE,))
    if holds_run(path):
        if not force:
            raise ConfigError(f"output.dir: {path} already holds a run", hints=(Hint.REPLACE, Hint.ELSEWHERE))
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    return make_run_dir(path)


class MetricsLog:
    """Appends one row per epoch to metrics.jsonl and metrics.csv, flushed as each row is written."""

    def __init__(self, run_dir, columns=METRIC_COLUMNS):
        run_dir = Path(run_dir)
        self.columns = list(columns)
        self._jsonl = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
        csv_path = run_dir / "metrics.csv"
        new = not csv_path.exists() or csv_path.stat().st_size == 0
        self._csv_file = open(csv_path, "a", encoding="utf-8", newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=self.columns, extrasaction="ignore")
        if new:
            self._csv.writeheader()

    def write(self, row):
        row = jsonable(row)
        self._jsonl.write(json.dumps(row) + "\n")
        self._jsonl.flush()
        self._csv.writerow(row)
        self._csv_file.flush()

    def close(self):
        self._jsonl.close()
        self._csv_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_metrics(run_dir):
    """The rows of a run's metrics.jsonl, in order.

    A last line cut short (a crash or a full disk in the middle of an append) is left out: that epoch's checkpoint
    row is the record resume goes by. A damaged line before the last is an error naming the file and line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number == len(lines):
                break
            raise RunError(f"{path}: line {number} is not a JSON metrics row: {line[:60].strip()!r}") from None
    return rows


def rewrite_metrics(run_dir, rows, columns=METRIC_COLUMNS):
    """Replace metrics.jsonl and metrics.csv with exactly `rows` (used on resume), each file atomically."""
    run_dir = Path(run_dir)
    rows = [jsonable(row) for row in rows]
    atomic_write_text(run_dir / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    lines = io.StringIO()
    writer = csv.DictWriter(lines, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(run_dir / "metrics.csv", lines.getvalue())


class RunLock:
    """One run per directory at a time: an exclusive flock on RUN_DIR/.lock.

    The operating system drops the lock when the process exits, even after kill -9, so a crash never leaves
    the directory locked; the file itself is removed on a clean release.
    """

    def __init__(self, run_dir):
        import fcntl

        self.path = make_run_dir(run_dir) / ".lock"
        self._file = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise RunError(
                f"{run_dir} is in use by a training run (pid {holder}) until it finishes", hints=(Hint.ELSEWHERE,)
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self):
        if not self._file.closed:
            self.path.unlink(missing_ok=True)
            self._file.close()


def write_summary(run_dir, summary):
    """Write summary.json atomically."""
    atomic_write_json(Path(run_dir) / "summary.json", summary)
