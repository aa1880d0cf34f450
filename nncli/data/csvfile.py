"""The CSV reader: a header row naming the columns, one label column, feature columns; read into a Table.

The cells are split by `data.delimiter`, by default the candidate (, ; tab |) that splits the header into the most
columns. A table of plain numbers is parsed by a fast path (csvarrow.py with pyarrow installed, the `fast` extra,
else csvfast.py's vectorized NumPy); anything else, or any problem,
goes through the careful scan below, so every problem is a DataError naming the file, the line as numbered in the
file, and the column. The parsed size is checked against the memory budget before any cell is parsed.
"""

import csv

import numpy as np

from nncli.data import csvarrow, csvfast
from nncli.data.arrays import check_budget
from nncli.data.table import Table
from nncli.errors import DataError

DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}  # the candidates, in order of preference


def read_csv(path, target, features, require_labels, delimiter=None, text_columns=(), targets=None):
    """Read a CSV with a header row into a Table of its feature columns and its label column (see table.py).

    The label column is `target` when given, else the last column unless it is one of `features`. Without
    require_labels a missing label column means every column (or every chosen feature) is a feature. `delimiter`
    (default: detected from the header) separates the cells. The fast path parses a table of plain numbers; the
    `text_columns` (categorical), or any irregular cell, send the file through the careful scan, which keeps text.
    `targets` (a list; [] for the last column) reads regression or attribute targets as columns of the Table, after
    the features: its `targets` names them and it has no label.
    """
    if delimiter is None:
        _, delimiter = header_names(path)
    if targets is not None:
        return _with_targets(path, list(targets), features, delimiter, text_columns)
    head = _readable(path, lambda: csvfast.header(path, delimiter))
    if head is not None:
        header, offset, stop, rows = head
        label, names = _columns(path, header, rows, target, features, require_labels, delimiter)
        _check_size(path, rows, len(names) + (label is not None))
        columns = [header.index(name) for name in names]
        at = None if label is None else header.index(label)
        parsed = None
        if not set(text_columns) & set(names):
            args = (path, offset, stop, delimiter, len(header), columns, at, rows)
            parsed = _readable(path, lambda: csvarrow.parse(*args) or csvfast.parse(*args))
        if parsed is not None:
            X, text = parsed
            locate = lambda: _records(path, delimiter)[2]  # noqa: E731 — run only when a message needs a line
            return Table(str(path), names, list(X.T), text, label, locate=locate, block=X)
    header, rows, lines = _records(path, delimiter)
    label, names = _columns(path, header, len(rows), target, features, require_labels, delimiter)
    _check_size(path, len(rows), len(names) + (label is not None))
    table = np.char.strip(np.array(rows, dtype=str))
    cells = [table[:, header.index(name)] for name in names]
    text = None if label is None else table[:, header.index(label)]
    return Table(str(path), names, cells, text, label, lines=np.asarray(lines))


def _with_targets(path, targets, features, delimiter, text_columns):
    """read_csv of the features and then the target columns, all as columns (see read_csv's `targets`)."""
    header, _ = header_names(path, delimiter)
    targets = targets or header[-1:]
    for name in targets:
        if name not in header:
            raise DataError(f"{path}: no target column {name!r}; the columns are {', '.join(header)}")
    names = list(features) if features else [n for n in header if n not in targets]
    both = [n for n in names if n in targets]
    if both:
        raise DataError(f"{path}: column {both[0]!r} is both in data.target and one of data.features")
    table = read_csv(path, None, names + targets, False, delimiter, text_columns)
    table.label, table.targets = None, targets
    return table


def header_names(path, delimiter=None):
    """(the column names of the CSV's header line, the delimiter splitting them: `delimiter`, or the one detected);
    an unreadable file is a DataError naming it."""
    line = _header_line(_readable(path, lambda: csvfast.first_line(path)))
    delimiter = delimiter or detect_delimiter(line)
    return [
        name.strip() for name in next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    ], delimiter


def _header_line(text):
    """The text before the first line end (CR, LF or CRLF): a file whose lines end in lone CRs is one "line"."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n", 1)[0]


def detect_delimiter(line):
    """The candidate delimiter that splits the header `line` into the most columns (ties: the first in DELIMITERS).

    Only the text before the first line end counts: a file whose lines end in lone CRs reaches here whole."""
    line = _header_line(line)
    counts = {}
    for d in DELIMITERS:
        try:
            counts[d] = len(next(csv.reader([line], delimiter=d), []))
        except csv.Error:  # a quote left open: count the raw separators instead
            counts[d] = line.count(d) + 1
    return max(counts, key=counts.get)


def _columns(path, header, rows, target, features, require_labels, delimiter):
    """(label column name or None, feature names), the header checked against the config."""
    _check_delimiter(path, header, delimiter)
    _check_header(path, header, rows, {target, *(features or ())})
    label = _label_name(path, header, target, list(features or ()), require_labels)
    names = list(features) if features else [n for n in header if n != label]
    if not names:
        raise DataError(f"{path}: no feature columns (the columns are {', '.join(header)})")
    return label, names


def _check_delimiter(path, header, delimiter):
    """A header read as one column that holds another candidate delimiter was split by the wrong one: say which."""
    if header is None or len(header) != 1:
        return
    other = [d for d in DELIMITERS if d != delimiter and d in header[0]]
    if other:
        used = DELIMITERS.get(delimiter, repr(delimiter))
        raise DataError(
            f"{path}: the header reads as one column ({header[0][:60]!r}) split by {used}, but it contains "
            f"{DELIMITERS[other[0]]}; set data.delimiter to {other[0]!r} if that separates the columns"
        )


def _check_size(path, rows, columns):
    """Refuse, before parsing, a table whose float64 values would not fit in the memory budget."""
    check_budget(8 * rows * columns, f"{path}: its {rows:,} rows × {columns} columns, parsed,", DataError)


def _readable(path, read):
    """read(), with an unreadable file as a DataError."""
    try:
        return read()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None


def _records(path, delimiter):
    """(header or None, data records, the file line each record starts on); blank lines are skipped."""
    header, rows, lines, line = None, [], [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, delimiter=delimiter, skipinitialspace=True)
            for record in reader:
                first, line = line + 1, reader.line_num
                if not record or record == [""]:
                    continue
                if header is None:
                    header = [name.strip() for name in record]
                elif len(record) != len(header):
                    raise DataError(f"{path}: line {first} has {len(record)} fields, the header has {len(header)}")
                else:
                    rows.append(record)
                    lines.append(first)
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; a CSV data file must be UTF-8") from None
    except csv.Error as err:
        raise DataError(f"{path}: line {line + 1}: {err}") from None
    return header, rows, lines


def _check_header(path, header, rows, named):
    """A header of unique names and at least one data row; a header of numbers is a lost first sample, unless the
    config names some of its columns (`named`)."""
    if header is not None and not named & set(header) and all(is_number(name) for name in header):
        raise DataError(
            f"{path}: line 1 ({','.join(header)[:60]}) is numbers, not a header; a CSV data file starts "
            f"with a header row naming its columns (e.g. x1,x2,label), else its first sample is lost"
        )
    if header is None or not rows:  # rows: how many data rows
        raise DataError(f"{path}: no data rows (a CSV needs a header row and at least one sample)")
    if len(set(header)) != len(header):
        twice = sorted({name for name in header if header.count(name) > 1})
        raise DataError(f"{path}: column name(s) {', '.join(map(repr, twice))} appear more than once in the header")


def _label_name(path, header, target, chosen, require_labels):
    """The label column's name (None: there is none), checked against the header and the chosen features."""

    def missing(name, what):
        return DataError(f"{path}: no {what} column {name!r}; the columns are {', '.join(header)}")

    for name in chosen:
        if name not in header:
            raise missing(name, "feature")
    label = target if target is not None else header[-1]
    if label not in header or (target is None and label in chosen):
        label = None
    if label is None and require_labels:
        if target is not None:
            raise missing(target, "target")
        raise DataError(f"{path}: the last column {header[-1]!r} is a feature; set data.target to the label column")
    if label in chosen:
        raise DataError(f"{path}: column {label!r} is both data.target and one of data.features")
    return label


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def label_values(text):
    """A CSV label column's text as labels: int64 when every value is a whole number (so 1, 1.0 and 01 are one
    class, as they are one number), else the strings as written."""
    try:
        return text.astype(np.int64)
    except (ValueError, OverflowError):
        pass
    try:
        values = text.astype(np.float64)
    except (ValueError, OverflowError):
        return text
    if np.all(np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**53)):
        return values.astype(np.int64)
    return text
