"""A CSV's feature and label columns as read, before encoding: numbers where the fast path parsed them, else the
cells' stripped text, with the file line of every row for messages.

The CSV reader (csvfile.py) makes a Table; encoding.py turns it into the network's float inputs.
"""

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

NA_VALUES = ("", "NA", "NaN", "null", "?")  # data.na_values by default: the cell texts that mean "no value"


@dataclass
class Table:
    """Feature columns `names` with their `cells`, one array per column: float64 (parsed by the fast path, so
    nothing in them is missing) or stripped str. `label` is the label column's stripped text (None: no label
    column). `lines[i]` is the file line row i starts on; the fast path leaves it to `locate`, run when a message
    needs a line. `block` is the fast path's (N, D) array, whose columns the cells are."""

    path: str
    names: list[str]
    cells: list[np.ndarray]
    label: np.ndarray | None
    label_name: str | None = None
    lines: np.ndarray | None = None
    locate: Callable[[], np.ndarray] | None = None
    block: np.ndarray | None = None
    text: list | None = None
    targets: list | None = None  # regression or attribute target columns, read after the features

    def __len__(self):
        return len(self.cells[0])

    def line(self, row):
        """The file line that row `row` (0-based) starts on."""
        if self.lines is None:
            self.lines = np.asarray(self.locate())
        return int(self.lines[row])

    def missing(self, column, na_values):
        """Boolean mask of the cells of column `column` (an index) that are missing: NaN in a parsed column (which
        encoding.parse makes only of a na_values cell), a na_values token in a text column."""
        cells = self.cells[column]
        if cells.dtype.kind == "f":
            return np.isnan(cells)
        return np.isin(cells, list(na_values))

    def label_missing(self, na_values):
        """Boolean mask of the rows whose label cell is empty or a na_values token (all False without a label)."""
        if self.label is None:
            return np.zeros(len(self), bool)
        return np.isin(self.label, [*na_values, ""])  # an empty label is never a class

    def take(self, rows):
        """The table of rows `rows` only, in that order (lines kept, so messages still name the file's lines)."""
        lines = None if self.lines is None and self.locate is None else np.asarray(self.lines_all())[rows]
        label = None if self.label is None else self.label[rows]
        text = None if self.text is None else [None if t is None else t[rows] for t in self.text]
        cells = [c[rows] for c in self.cells]
        return replace(self, cells=cells, label=label, lines=lines, locate=None, block=None, text=text)

    def cell_text(self, column, row):
        """The cell as written in the file (stripped)."""
        if self.text is not None and self.text[column] is not None:
            return str(self.text[column][row])
        cell = self.cells[column][row]
        return repr(float(cell)) if self.cells[column].dtype.kind == "f" else str(cell)

    def lines_all(self):
        """Every row's file line."""
        self.line(0)
        return self.lines
