"""The CSV reader's fastest path, when pyarrow is installed: csvfast.parse's contract, parsed by pyarrow.csv.

pyarrow converts a decimal cell to the correctly rounded double, as float() does, so the values are float()'s bit for
bit; whatever pyarrow's strict number parser refuses makes `parse` return None, as does anything else irregular
(quotes, a NUL, a lone CR, a blank or ragged line, a cell that is not a finite number, an empty or non-UTF-8 label):
the caller then tries csvfast and the careful scan, which names the file, line and column of a problem. The file is
read in slices of CHUNK bytes cut at line ends, each parsed on pyarrow's threads, so memory holds the result and
one slice's bytes and table. pyarrow is imported on first use only (`import nncli` never pays for it), and not at
all for data under MIN_BYTES, which csvfast parses sooner.
"""

import functools

import numpy as np

CHUNK = 1 << 22  # 4 MiB: 16 MiB slices measured 170 MiB peak on the benchmark file, over its 125 MiB target
BLOCK = 1 << 20  # pyarrow's unit of parallel work inside a slice
MIN_BYTES = 1 << 22  # smaller data goes to csvfast, quicker than importing pyarrow


@functools.cache
def _pyarrow():
    """(pyarrow, pyarrow.csv), or None when pyarrow is not installed."""
    try:
        import pyarrow
        import pyarrow.csv
    except ImportError:
        return None
    return pyarrow, pyarrow.csv


def available():
    """Whether pyarrow is installed, so that `parse` can apply."""
    return _pyarrow() is not None


def parse(path, offset, stop, delimiter, ncols, numeric, label, rows):
    """(X (n, len(numeric)) float64, label text (n,) or None) of the data lines in bytes [offset, stop), whose cells are
    split by `delimiter` into `ncols` columns; `numeric` are the feature columns' indices, `label` the label's (or
    None); `rows` bounds the number of lines. None when the data is under MIN_BYTES, pyarrow is absent, or the fast
    path does not apply."""
    if stop - offset < MIN_BYTES or _pyarrow() is None:
        return None
    read = _reader(delimiter, ncols, numeric, label)
    X = np.empty((rows, len(numeric)))
    texts, done = [], 0
    with open(path, "rb") as f:
        f.seek(offset)
        while block := f.read(min(CHUNK, stop - f.tell())):
            cut = block.rfind(b"\n") + 1 if f.tell() < stop else len(block)
            if cut == 0 and len(block) == CHUNK:
                return None  # a line longer than a slice is not a table's line
            f.seek(cut - len(block), 1)  # the partial last line starts the next slice
            table = read(block, cut)
            if table is None or done + table.num_rows > rows:
                return None
            text = _fill(table, X[done : done + table.num_rows], numeric, label)
            if text is None:
                return None
            texts.append(text)
            done += table.num_rows
    if done == 0:
        return None
    return X[:done], None if label is None else np.concatenate(texts)


def _fill(table, out, numeric, label):
    """Copy `table`'s feature columns into `out` (n, len(numeric)): the label text (n,) (an empty array when `label`
    is None), or None when a value is not finite or a label is empty."""
    for j, i in enumerate(numeric):  # by name: a column chosen twice is read once
        at = 0
        for chunk in table.column(f"c{i}").chunks:
            out[at : at + len(chunk), j] = chunk.to_numpy()
            at += len(chunk)
    if not np.isfinite(out).all():
        return None
    if label is None:
        return np.empty(0, str)
    labels = table.column(f"c{label}").combine_chunks().dictionary_encode()  # few distinct labels: strip those
    distinct = np.char.strip(labels.dictionary.to_numpy(zero_copy_only=False).astype(str))
    if (distinct == "").any():
        return None
    return distinct[labels.indices.to_numpy()]


def _reader(delimiter, ncols, numeric, label):
    """A function of the complete lines block[:cut] to their pyarrow table (the numeric columns float64, the label
    text), or None when a line is irregular."""
    pa, csv = _pyarrow()
    names = [f"c{i}" for i in range(ncols)]
    types = {names[i]: pa.float64() for i in numeric}
    if label is not None:
        types[names[label]] = pa.string()  # checked UTF-8
    options = {
        "read_options": csv.ReadOptions(column_names=names, block_size=BLOCK),
        "parse_options": csv.ParseOptions(delimiter=delimiter, quote_char=False, ignore_empty_lines=False),
        "convert_options": csv.ConvertOptions(
            column_types=types, include_columns=list(types), null_values=[], strings_can_be_null=False
        ),
    }

    def read(block, cut):
        if block.find(b'"', 0, cut) >= 0 or block.find(b"\0", 0, cut) >= 0:
            return None
        if block.find(b"\r", 0, cut) >= 0 and block.count(b"\r", 0, cut) != block.count(b"\r\n", 0, cut):
            return None  # a lone CR
        try:
            return csv.read_csv(pa.py_buffer(memoryview(block)[:cut]), **options)
        except (pa.ArrowException, ValueError):
            return None  # a ragged or blank line, a cell that is no number, a label that is not UTF-8

    return read
