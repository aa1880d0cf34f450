"""What a CSV holds, as training will read it: its delimiter, target, each column's kind and missing cells, and the
task its target suggests; `nncli init --from` writes a config from it. The rules are the reader's and the encoder's
own (csvfile.read_csv, encoding.parse and screen), so the kinds reported are the kinds training decides.

The target rule, `continuous_target`, is also what training applies before mapping labels to classes (with a
classification loss only): a numeric target is continuous (a regression target, for loss l2, l1 or huber) when any
value is not a whole number, or when its whole numbers take more than max(MIN_CONTINUOUS, CONTINUOUS_SHARE × rows)
distinct values (classes that rare are measurements, not classes). Text labels are never continuous.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from nncli.data.csvfile import DELIMITERS, header_names, label_values, read_csv
from nncli.data.encoding import parse, screen
from nncli.data.files import file_missing
from nncli.data.table import NA_VALUES
from nncli.errors import DataError
from nncli.nn.losses import LOSSES

CONTINUOUS_SHARE, MIN_CONTINUOUS = 0.5, 20


def continuous_target(y_raw):
    """Why labels `y_raw` (N,) look like a continuous target, as "holds … in N rows", or None when they are class
    labels (text, or few distinct whole numbers); see the module docstring for the rule."""
    y = np.asarray(y_raw).reshape(-1)
    if y.dtype.kind not in "biufUSO" or not len(y):
        return None
    distinct, first = np.unique(y, return_index=True)
    try:
        values = distinct.astype(np.float64)
    except (ValueError, TypeError, OverflowError):
        return None  # text labels are class names
    seen = distinct[np.argsort(first)]  # in the order of the file
    fraction = np.isfinite(values) & (values != np.round(values))
    if fraction.any():
        shown = seen[np.isin(seen, distinct[fraction])][:2]
        return f"holds non-integer numbers such as {_listed(shown)} ({len(distinct):,} distinct in {len(y):,} rows)"
    if len(distinct) > max(MIN_CONTINUOUS, CONTINUOUS_SHARE * len(y)):
        return f"holds {len(distinct):,} distinct numbers such as {_listed(seen[:2])} in {len(y):,} rows"
    return None


def check_target(y_raw, source, column=None):
    """Refuse a continuous target (see `continuous_target`) before it becomes hundreds of one-sample classes; training
    calls it only for a classification loss (a regression loss reads the same column as real numbers)."""
    reason = continuous_target(y_raw)
    if reason is None:
        return
    what = f"column {column!r}" if column else "the labels"
    classifiers = ", ".join(name for name, loss in LOSSES.items() if loss.task == "classification")
    raise DataError(
        f"{source}: {what} {reason}: it looks like a continuous target, which the classification losses "
        f"({classifiers}) cannot learn: set loss: l2 (or l1, huber) for regression, or pick a class column as "
        f"data.target, or bin the values into a few classes"
    )


def _listed(values):
    return " and ".join(str(v) for v in values.tolist())


@dataclass(frozen=True)
class ColumnProfile:
    """One feature column as training reads it: kind 'numeric', 'categorical' or 'left out' (with `reason`: a
    column training would refuse, or one holding no values)."""

    name: str
    kind: str
    missing: int
    distinct: int
    reason: str = ""


@dataclass(frozen=True)
class Profile:
    """A CSV file as `nncli init --from` reports it. `task` is "classification" or "regression"; `classes` the
    target's distinct labels (rows with a missing label left out), `smallest` the fewest rows of one class."""

    path: str
    delimiter: str
    target: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    missing_labels: int
    task: str
    classes: int
    smallest: int
    reason: str | None

    @property
    def features(self):
        return [c.name for c in self.columns if c.kind != "left out"]

    @property
    def categorical(self):
        return [c.name for c in self.columns if c.kind == "categorical"]

    @property
    def missing_cells(self):
        """{column: missing cells} of the features kept, for those with any."""
        return {c.name: c.missing for c in self.columns if c.missing and c.kind != "left out"}


def profile_csv(path, target=None, na_values=NA_VALUES):
    """Read the CSV at `path` as training would (target: the last column by default) and profile it; a file that
    is not a readable CSV is a DataError naming it."""
    if not str(path).lower().endswith(".csv"):
        raise DataError(f"{path}: not a .csv file; a table to profile is a CSV file with a header row")
    if not Path(path).is_file():
        raise file_missing(path)
    _, delimiter = header_names(path)
    table = read_csv(path, target, None, True, delimiter)
    columns = tuple(_column(table, j, na_values) for j in range(len(table.names)))
    if all(c.kind == "left out" for c in columns):
        reasons = "; ".join(f"{c.name!r}: {c.reason}" for c in columns)
        raise DataError(f"{path}: no feature column training could use ({reasons})")
    no_label = table.label_missing(na_values)
    kept = ~no_label
    if any(c.missing for c in columns if c.kind != "left out") and no_label.any():  # data.missing drop then
        for j, c in enumerate(columns):
            if c.kind != "left out":
                kept &= ~table.missing(j, na_values)
    labels = label_values(table.label[kept]) if kept.any() else np.array([], dtype=str)
    reason = continuous_target(labels)
    counts = np.unique(labels, return_counts=True)[1]
    task = "classification" if reason is None else "regression"
    smallest = int(counts.min(initial=len(table)))
    return Profile(
        str(path),
        delimiter,
        table.label_name,
        len(table),
        columns,
        int(no_label.sum()),
        task,
        len(counts),
        smallest,
        reason,
    )


def _column(table, j, na_values):
    """Column j's profile: its kind as `parse` (data.categorical auto) decides it, its missing cells as `screen`
    counts them; a column parse refuses, or one with no values, is left out with the reason."""
    name = table.names[j]
    text = None if table.text is None else [table.text[j]]
    alone = replace(table, names=[name], cells=[table.cells[j]], text=text, block=None)
    try:
        parsed = parse(alone, None, na_values)
    except DataError as err:
        miss = alone.missing(0, na_values)
        distinct = len(np.unique(alone.cells[0][~miss]))
        return ColumnProfile(name, "left out", int(miss.sum()), distinct, _reason(err, table.path))
    kind = "numeric" if parsed.cells[0].dtype.kind == "f" else "categorical"
    missing = screen(parsed, "median", na_values, labels=False)[1]["missing_cells"].get(name, 0)
    known = parsed.cells[0][~parsed.missing(0, na_values)]
    if not len(known):
        return ColumnProfile(name, "left out", missing, 0, "every cell is missing")
    return ColumnProfile(name, kind, missing, len(np.unique(known)))


def _reason(err, path):
    """A DataError's message without the file name in front (the profile names the file once)."""
    return err.message.removeprefix(f"{path}: ")


def delimiter_name(delimiter):
    """',' or tab, as the messages name the delimiters."""
    return DELIMITERS.get(delimiter, repr(delimiter))
