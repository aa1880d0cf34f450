"""From a CSV Table to the network's inputs: numeric columns as numbers, text columns one-hot encoded, missing cells
refused, dropped or filled. Everything is fitted on the training split only and stored in the checkpoint
(`Encoding.to_meta`), so eval and predict encode new rows exactly as training did.

  data.missing           error (default) | drop (the rows) | mean | median | most_frequent; text columns are
                         filled with their most frequent category under any of the three fills
  data.na_values         the cell texts that mark a missing value ("", NA, NaN, null, ? by default)
  data.categorical       auto: the columns whose values are mostly not numbers; or the list of columns to encode
  data.unknown_category  error | ignore: a category not seen in training becomes all zeros

A category is its cell's text as written (stripped): "1" and "1.0" are two categories, as two words would be.
Columns are encoded in order; a categorical column becomes one input per category, in sorted order, named
"column=category". With `categorical: auto`, a text column with more distinct values than MAX_AUTO_SHARE of the
training rows (and more than MIN_AUTO_REFUSE) looks like an identifier or free text and is refused.
"""

from dataclasses import dataclass, replace

import numpy as np

from nncli.data.csvfile import is_number
from nncli.data.table import NA_VALUES, Table
from nncli.errors import DataError

MISSING = ("error", "drop", "mean", "median", "most_frequent")
FILLS = ("mean", "median", "most_frequent")
MAX_CATEGORIES = 1000
MAX_AUTO_SHARE, MIN_AUTO_REFUSE = 0.5, 20
SET_MISSING = "set data.missing to drop, mean, median or most_frequent to drop or fill missing cells"


@dataclass(frozen=True)
class Column:
    """One CSV feature column: 'numeric' (one input) or 'categorical' (one input per category); `fill` replaces a
    missing cell (None: a missing cell is an error)."""

    name: str
    kind: str
    fill: float | str | None = None
    categories: tuple[str, ...] = ()

    @property
    def width(self):
        return len(self.categories) if self.kind == "categorical" else 1

    def input_names(self):
        return [f"{self.name}={c}" for c in self.categories] if self.kind == "categorical" else [self.name]


@dataclass(frozen=True)
class Encoding:
    """How a Table's columns become float inputs; see the module docstring."""

    columns: tuple[Column, ...]
    missing: str = "error"
    unknown_category: str = "error"
    na_values: tuple[str, ...] = NA_VALUES

    @property
    def width(self):
        return sum(c.width for c in self.columns)

    @property
    def names(self):
        """The column names, in order: the columns picked from a CSV."""
        return [c.name for c in self.columns]

    @property
    def input_names(self):
        """One name per network input ("island=Biscoe" for a one-hot input)."""
        return [name for c in self.columns for name in c.input_names()]

    @property
    def one_hot(self):
        """(width,) bool: which inputs are one-hot indicators (left unstandardized, 0 or 1)."""
        return np.repeat([c.kind == "categorical" for c in self.columns], [c.width for c in self.columns])

    @property
    def text_columns(self):
        """The names of the categorical columns, which the reader must keep as text."""
        return {c.name for c in self.columns if c.kind == "categorical"}

    def kinds(self):
        """{column name: kind}, for `parse`."""
        return {c.name: c.kind for c in self.columns}

    def transform(self, table: Table):
        """The inputs (N, width) float64 of `table`'s rows, parsed by `parse` with these kinds; a missing cell
        without a fill or (with unknown_category error) an unseen category is a DataError naming line and column."""
        if table.block is not None and all(c.kind == "numeric" for c in self.columns):
            return table.block
        X = np.zeros((len(table), self.width))
        at = 0
        for column in self.columns:
            j = table.names.index(column.name)
            miss = table.missing(j, self.na_values)
            if column.fill is None and miss.any():  # `screen` refuses them first, naming the earliest
                raise missing_cell(table, miss, j)
            if column.kind == "numeric":
                X[:, at] = np.where(miss, column.fill, table.cells[j]) if miss.any() else table.cells[j]
            else:
                self._one_hot(X[:, at : at + column.width], table, j, miss, column)
            at += column.width
        return X

    def _one_hot(self, out, table, j, miss, column):
        cells = np.where(miss, column.fill or "", table.cells[j]) if miss.any() else table.cells[j]
        known = np.asarray(column.categories)
        pos = np.minimum(np.searchsorted(known, cells), len(known) - 1)
        hit = known[pos] == cells
        if not hit.all() and self.unknown_category == "error":
            row = int(np.argmax(~hit))
            shown = ", ".join(map(repr, column.categories[:10])) + (" …" if len(known) > 10 else "")
            raise DataError(
                f"{table.path}: line {table.line(row)}, column {column.name!r}: {str(cells[row])!r} is not a "
                f"category seen in training ({shown}); a model keeps the data.unknown_category it was trained "
                f"with: set it to ignore before training to encode unseen categories as all zeros"
            )
        rows = np.flatnonzero(hit)
        out[rows, pos[rows]] = 1.0

    def to_meta(self):
        """A JSON-ready dict for the checkpoint's meta."""
        return {
            "missing": self.missing,
            "unknown_category": self.unknown_category,
            "na_values": list(self.na_values),
            "columns": [
                {"name": c.name, "kind": c.kind, "fill": c.fill, "categories": list(c.categories)} for c in self.columns
            ],
        }

    @classmethod
    def numeric(cls, names, na_values=NA_VALUES):
        """All columns numeric, missing cells refused: how a checkpoint without an encoding (an older nncli) reads."""
        return cls(tuple(Column(n, "numeric") for n in names), na_values=tuple(na_values))


def parse(table: Table, kinds, na_values, listed=False):
    """`table` with every numeric column parsed to float64 (NaN where a cell is missing), the others kept as text.

    `kinds` maps column names to 'numeric' or 'categorical' (the checkpoint's); a column it leaves out (or every
    column, for None) has its kind found from its cells (data.categorical auto). `listed`: the config lists its
    categorical columns, so a
    text cell in another column is refused with the hint to list it. A numeric column's cell that is not a finite
    number is a DataError naming its line and column."""
    cells, text = list(table.cells), list(table.text or [None] * len(table.names))
    for j, name in enumerate(table.names):
        if cells[j].dtype.kind == "f":
            continue
        miss = table.missing(j, na_values)
        kind = (kinds or {}).get(name) or _auto_kind(table, j, miss)
        if kind == "numeric":
            text[j], cells[j] = cells[j], _numbers(table, j, miss, listed)
    return replace(table, cells=cells, text=text)


def fit(table: Table, rows, missing="error", na_values=NA_VALUES, unknown_category="error"):
    """The Encoding of a parsed `table` (see `parse`) fitted on its rows `rows` (the training split): each
    column's categories and fill value."""
    columns = []
    for j, name in enumerate(table.names):
        cells = table.cells[j][rows]
        known = cells[~table.missing(j, na_values)[rows]]
        if not len(known):
            raise DataError(f"{table.path}: column {name!r} has no values in the training split, only missing cells")
        if cells.dtype.kind == "f":
            columns.append(Column(name, "numeric", _fill(known, missing) if missing in FILLS else None))
            continue
        categories, counts = np.unique(known, return_counts=True)
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"{table.path}: column {name!r} has {len(categories):,} categories in the training split, more "
                f"than the {MAX_CATEGORIES} one-hot encoding allows; leave it out of data.features"
            )
        fill = str(categories[np.argmax(counts)]) if missing in FILLS else None
        columns.append(Column(name, "categorical", fill, tuple(categories.tolist())))
    return Encoding(tuple(columns), missing, unknown_category, tuple(na_values))


def screen(table: Table, missing, na_values, labels=True, purpose=None):
    """(table, cleaning) of a parsed table: with data.missing drop, the rows holding a missing cell (or, when
    `labels`, a missing label) left out; with error, the first missing cell is a DataError (`purpose` "predict":
    a model trained with drop, which has no value to fill); a missing label is one unless rows are dropped.
    `cleaning` counts what was found: {"missing_cells": per column, "dropped_rows": n, "rows": rows read}."""
    masks = [table.missing(j, na_values) for j in range(len(table.names))]
    no_label = table.label_missing(na_values) if labels else np.zeros(len(table), bool)
    counts = {name: int(m.sum()) for name, m in zip(table.names, masks) if m.any()}
    cleaning = {"missing_cells": counts, "dropped_rows": 0, "rows": len(table)}
    if missing == "drop":
        bad = np.logical_or.reduce([no_label, *masks])
        if bad.all():
            raise DataError(f"{table.path}: every row has a missing cell, so data.missing drop leaves no rows")
        if bad.any():
            table = table.take(np.flatnonzero(~bad))
        cleaning["dropped_rows"] = int(bad.sum())
        return table, cleaning
    if missing == "error" and counts:
        j = min((int(np.argmax(m)), j) for j, m in enumerate(masks) if m.any())[1]  # the earliest row's cell
        raise missing_cell(table, masks[j], j, purpose)
    if no_label.any():
        row = int(np.argmax(no_label))
        cell = table.label[row]
        what = "the label is empty" if cell == "" else f"the label {str(cell)!r} marks a missing value (data.na_values)"
        raise DataError(
            f"{table.path}: line {table.line(row)}, column {table.label_name!r}: {what}; a row without its label "
            f"cannot be filled, only dropped (data.missing: drop)"
        )
    return table, cleaning


def _fill(values, missing):
    """The training values' mean, median or most frequent value (ties: the smallest), as a float."""
    if missing == "mean":
        return float(values.mean())
    if missing == "median":
        return float(np.median(values))
    distinct, counts = np.unique(values, return_counts=True)
    return float(distinct[np.argmax(counts)])


def _auto_kind(table, j, miss):
    """'numeric' when the column's non-missing cells are numbers (or mostly are: then the odd one is an error,
    named), else 'categorical' (refused when it looks like an identifier or free text)."""
    cells = table.cells[j]
    distinct, counts = np.unique(cells[~miss], return_counts=True)
    is_number = np.array([_is_finite_number(text) for text in distinct.tolist()], bool)
    if is_number.all() or counts[is_number].sum() >= 0.5 * counts.sum():
        return "numeric"
    if len(distinct) > max(MIN_AUTO_REFUSE, MAX_AUTO_SHARE * len(cells)):
        name = table.names[j]
        raise DataError(
            f"{table.path}: column {name!r} holds {len(distinct):,} distinct text values in {len(cells):,} rows: it "
            f"looks like an identifier or free text, not a category; leave it out of data.features, or list it in "
            f"data.categorical to one-hot encode it anyway"
        )
    return "categorical"


def _numbers(table, j, miss, listed):
    """Text column j as float64, NaN where missing; a cell that is not a finite number is a DataError naming its
    line (`listed`: the column's kind was given, so the hint says how to make it categorical)."""
    cells = table.cells[j]
    text = np.where(miss, "0", cells) if miss.any() else cells
    try:
        values = text.astype(np.float64)
    except ValueError:
        row = next(i for i, s in enumerate(text.tolist()) if not is_number(s))  # only on the error path
        raise _not_a_number(table, row, j, listed) from None
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        row = int(bad[0])
        raise DataError(
            f"{table.path}: line {table.line(row)}, column {table.names[j]!r}: {text[row]} is not a finite number"
        )
    values[miss] = np.nan
    return values


def _not_a_number(table, row, j, listed):
    where = f"{table.path}: line {table.line(row)}, column {table.names[j]!r}"
    what = "is empty" if table.cells[j][row] == "" else f"{str(table.cells[j][row])!r} is not a number"
    hint = "list the column in data.categorical to one-hot encode it" if listed else "the column holds numbers"
    return DataError(f"{where}: {what}; {hint}")


def missing_cell(table, miss, j, purpose=None):
    """The DataError for the first missing cell `miss` of column j: it is refused, and how to allow it."""
    row = int(np.argmax(miss))
    cell = table.cell_text(j, row)
    what = "is empty" if cell == "" else f"{str(cell)!r} marks a missing value (data.na_values)"
    where = f"{table.path}: line {table.line(row)}, column {table.names[j]!r}"
    if purpose == "predict":
        return DataError(f"{where}: {what}; the model was trained with data.missing drop, so it has no value to fill")
    return DataError(f"{where}: {what}; {SET_MISSING}")


def _is_finite_number(text):
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False
