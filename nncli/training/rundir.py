"""The run directory: where a training run writes its config, metrics, checkpoints and summary.

Layout: config.yaml, metrics.jsonl, metrics.csv, checkpoint.npz, best.npz, summary.json.
A directory that already holds a run is never reused silently.
"""

import contextlib
import csv
import io
import json
import math
import os
import stat
import uuid
from pathlib import Path

from nncli.errors import ConfigError, Hint, OutputError, RunError, RunTaken, show_value
from nncli.nn.metrics import monitors
from nncli.training.atomic import atomic_write_json, atomic_write_text, check_target, jsonable, write_failed

RUN_FILES = ("config.yaml", "metrics.jsonl", "metrics.csv", "checkpoint.npz", "best.npz", "summary.json", "run.json")
TRAINED = ("checkpoint.npz", "best.npz", "summary.json")  # a run that wrote one of these has something to lose
METRIC_COLUMNS = ("epoch", *monitors(), "lr", "seconds")  # every metric a row may hold, whatever its task


def metric_columns(task):
    """metrics.csv's columns for a run of `task` (classification: epoch, train_loss, train_accuracy, val_loss, …)."""
    return ("epoch", *monitors(task=task), "lr", "seconds")


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


def has_trained(path):
    """True when the run in `path` has written something a restart would lose: a checkpoint, best.npz, a summary or
    a metrics row. A run stopped before its first checkpoint (killed, or its output pipe closed) has not."""
    path = Path(path)
    if any((path / name).exists() for name in TRAINED):
        return True
    try:
        return (path / "metrics.jsonl").stat().st_size > 0
    except OSError:
        return False


def prepare_run_dir(path, force=False):
    """Create the run directory; refuse one that holds a run unless `force` (then its run files are replaced). A run
    that stopped before its first checkpoint has nothing to lose: its files are replaced without `force`."""
    path = Path(path)
    if runs_inside(path):  # never mix a single run into a study or a sweep, even with force
        raise RunTaken(f"output.dir: {runs_inside(path)}", hints=(Hint.ELSEWHERE,))
    if holds_run(path):
        if has_trained(path) and not force:
            raise RunTaken(f"output.dir: {path} already holds a run", hints=(Hint.REPLACE, Hint.ELSEWHERE))
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    return make_run_dir(path)


def new_run_id(run_dir):
    """Give the run in `run_dir` a fresh id, recorded in run.json; every checkpoint it writes carries the id."""
    run_id = uuid.uuid4().hex
    atomic_write_json(Path(run_dir) / "run.json", {"run_id": run_id})
    return run_id


def read_run_id(run_dir):
    """The id run.json records (None for a run directory written before nncli recorded one)."""
    path = Path(run_dir) / "run.json"
    lines = _read_lines(path)
    if lines is None:
        return None
    try:
        run_id = json.loads("\n".join(lines))["run_id"]
    except (ValueError, RecursionError, KeyError, TypeError):
        run_id = None
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 64:
        raise RunError(f'{path}: must hold a JSON object {{"run_id": "<hex>"}}, got {show_value(lines[:1])}')
    return run_id


class MetricsLog:
    """Appends one row per epoch to metrics.jsonl and metrics.csv, flushed as each row is written. Neither file is
    opened through a symbolic link, and a failed write is an OutputError naming the file."""

    def __init__(self, run_dir, columns=METRIC_COLUMNS):
        run_dir = Path(run_dir)
        self.columns = list(columns)
        self._paths = run_dir / "metrics.jsonl", run_dir / "metrics.csv"
        self._jsonl = _open_append(self._paths[0])
        self._csv_file = _open_append(self._paths[1], newline="")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=self.columns, extrasaction="ignore")
        if os.fstat(self._csv_file.fileno()).st_size == 0:
            self._write(self._paths[1], self._csv.writeheader)

    def write(self, row):
        row = jsonable(row)
        jsonl, csv_path = self._paths
        self._write(jsonl, lambda: self._jsonl.write(json.dumps(row) + "\n"))
        self._write(jsonl, self._jsonl.flush)
        self._write(csv_path, lambda: self._csv.writerow(row))
        self._write(csv_path, self._csv_file.flush)

    @staticmethod
    def _write(path, write):
        try:
            write()
        except OSError as e:
            raise write_failed(path, e) from None

    def close(self):
        for f in (self._jsonl, self._csv_file):
            with contextlib.suppress(OSError):  # a row that could not be flushed: reported, and resume repairs it
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _open_append(path, newline=None):
    """`path` opened for appending text, refusing a symbolic link (O_NOFOLLOW) and anything but a regular file."""
    check_target(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as e:
        raise write_failed(path, e) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        check_target(path)
    return open(fd, "a", encoding="utf-8", newline=newline, closefd=True)


def _read_lines(path):
    """The lines of the regular file at `path` (a FIFO or a device is refused, not waited on); None when missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunError(f"{path}: cannot be read ({e.strerror})") from None
    with open(fd, encoding="utf-8", errors="replace") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RunError(f"{path}: not a regular file (a FIFO, a device or a socket)")
        try:
            return f.read().splitlines()
        except OSError as e:
            raise RunError(f"{path}: cannot be read ({e.strerror})") from None


def _row_problem(row):
    """What makes a parsed metrics.jsonl line not a row (None when it is one)."""
    if not isinstance(row, dict):
        return f"a JSON {type(row).__name__}, not an object"
    epoch = row.get("epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        return f"epoch must be an integer ≥ 1, got {show_value(epoch)}"
    for key in METRIC_COLUMNS[1:]:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"{key} must be a number or null, got {show_value(value)}"
        if value is not None and not math.isfinite(value):  # nncli writes a non-finite value as null
            return f"{key} must be a finite number or null, got {show_value(value)}"
    if not isinstance(row.get("layers", {}), dict):
        return f"layers must be an object, got {show_value(row['layers'])}"
    return None


def read_metrics(run_dir):
    """The rows of a run's metrics.jsonl, in order: epochs 1, 2, … each a JSON object with numeric metrics.

    A last line cut short (a crash or a full disk in the middle of an append) is left out: that epoch's checkpoint
    row is the record resume goes by. Anything else (a damaged line, a line that is not a row, an epoch repeated,
    skipped or out of order) is a RunError naming the file and the line.
    """
    path = Path(run_dir) / "metrics.jsonl"
    lines = _read_lines(path)
    numbered = [(number, line) for number, line in enumerate(lines or (), start=1) if line.strip()]
    rows = []
    for number, line in numbered:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            if number == numbered[-1][0]:
                break
            raise RunError(f"{path}: line {number} is not a JSON metrics row: {line[:60].strip()!r}") from None
        if problem := _row_problem(row):
            raise RunError(f"{path}: line {number} is not a metrics row ({problem})")
        if row["epoch"] != len(rows) + 1:
            raise RunError(
                f"{path}: line {number} is epoch {row['epoch']} where epoch {len(rows) + 1} belongs "
                f"(rows repeated, missing or out of order: the file was edited or appended twice)"
            )
        rows.append(row)
    return rows


SUMMARY_TYPES = {
    "status": (str,),
    "name": (str, type(None)),
    "epochs_run": (int,),
    "epochs": (int,),
    "monitor": (str,),
    "best_epoch": (int, type(None)),
    "best": (dict, type(None)),
    "final": (dict, type(None)),
    "wall_seconds": (int, float),
    "samples_per_second": (int, float, type(None)),
    "warnings": (list,),
}


def read_summary(run_dir):
    """A run's summary.json as a dict, checked key by key (SUMMARY_TYPES); RunError naming the file and the key."""
    path = Path(run_dir) / "summary.json"
    lines = _read_lines(path)
    if lines is None:
        raise RunError(runs_inside(run_dir) or f"{run_dir}: not a finished nncli run (no summary.json)")
    try:
        summary = json.loads("\n".join(lines))
    except (ValueError, RecursionError) as e:
        raise RunError(f"{run_dir}: not a finished nncli run ({path.name}: {e})") from None
    if not isinstance(summary, dict) or "status" not in summary:
        raise RunError(f"{path}: must hold a JSON object with a status, got {show_value(summary)}")
    for key, kinds in SUMMARY_TYPES.items():
        value = summary.get(key)
        if key in summary and (isinstance(value, bool) or not isinstance(value, kinds)):
            allowed = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            raise RunError(f"{path}: {key} must be {allowed}, got {show_value(value)}")
    return summary


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


def write_failure(error, run_dir, saved):
    """The OutputError a run ends with when `error` (a failed write: a full disk, a read-only file system, an I/O
    error) stopped it: what failed, what is intact (`saved`, the (epoch, step) of its checkpoint.npz, or None) and
    what to do once the disk can be written again."""
    if saved is None:
        return OutputError(
            f"{error.message}; no checkpoint was written yet, so nothing trained is lost; "
            f"once {run_dir} can be written, start the run again",
            hints=(Hint.START_FRESH,),
        )
    epoch, step = saved
    where = f"epoch {epoch}" + (f" + {step} steps of epoch {epoch + 1}" if step else "")
    return OutputError(
        f"{error.message}; the checkpoint of {where} ({Path(run_dir) / 'checkpoint.npz'}) and everything written "
        f"before it are intact; free space (or make the disk writable) and resume {run_dir}: it continues "
        f"bit-identically",
        hints=(Hint.RESUME,),
    )


def write_summary(run_dir, summary):
    """Write summary.json atomically."""
    atomic_write_json(Path(run_dir) / "summary.json", summary)
