"""The CSV reader's fast path: the header, a row count, and the numeric cells parsed by vectorized NumPy.

A plain cell, [sign] digits [. digits] with at most 15 digits, is m / 10**k for whole numbers m < 2**53 and k <= 15,
both exact doubles, so one IEEE division gives the correctly rounded value, exactly what float() gives (Clinger's
fast path). Any other cell is converted as the careful scan converts it (strip, then astype). Anything irregular
(quotes in the data, a blank or ragged line, a NUL, a cell that is not a finite number, an empty label) makes
`parse` return None: the caller then runs the careful scan, which names the file, line and column of the problem.
The file is read in chunks of CHUNK bytes, so memory holds the result and one chunk's temporaries.
"""

import csv

import numpy as np

CHUNK = 1 << 19
MAX_DIGITS = 15
WIDEST = MAX_DIGITS + 2  # a sign and a point
BOM = b"\xef\xbb\xbf"
NEWLINE, MINUS, PLUS, POINT, ZERO = b"\n"[0], b"-"[0], b"+"[0], b"."[0], b"0"[0]
POW10 = 10 ** np.arange(WIDEST, dtype=np.int64)
POW10_FLOAT = POW10.astype(np.float64)


def first_line(path):
    """The file's first line as text (BOM and line end dropped; undecodable bytes replaced), for sniffing."""
    with open(path, "rb") as f:
        head = f.read(CHUNK).removeprefix(BOM)
    return head.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace")


def header(path, delimiter):
    """(column names, byte offsets where the data lines start and end (before trailing line ends), data lines at
    most), or None when the header is not one plain line (blank lines before it, a quoted line break, not UTF-8,
    longer than a chunk)."""
    with open(path, "rb") as f:
        head = f.read(CHUNK)
        bom = len(BOM) if head.startswith(BOM) else 0
        end = head.find(b"\n", bom)
        if end < 0 and len(head) == CHUNK:
            return None
        line = head[bom : end if end >= 0 else len(head)].rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if not text.strip() or text.count('"') % 2 or "\r" in text:
            return None
        names = [name.strip() for name in next(csv.reader([text], delimiter=delimiter, skipinitialspace=True))]
        offset = end + 1 if end >= 0 else len(head)
        f.seek(offset)
        lines, last = 0, b"\n"
        while block := f.read(1 << 22):
            lines, last = lines + block.count(b"\n"), block[-1:]
        size = f.tell()
        f.seek(max(offset, size - 4096))
        tail = f.read()
        return names, offset, size - (len(tail) - len(tail.rstrip(b"\r\n"))), lines + (last != b"\n")


def parse(path, offset, stop, delimiter, ncols, numeric, label, rows):
    """(X (n, len(numeric)) float64, label text (n,) or None) of the data lines in bytes [offset, stop), whose cells are
    split by `delimiter` into `ncols` columns; `numeric` are the feature columns' indices, `label` the label's (or
    None); `rows` bounds the number of lines. None when the fast path does not apply."""
    X = np.empty((rows, len(numeric)))
    texts, done, carry = [], 0, b""
    with open(path, "rb") as f:
        f.seek(offset)
        while True:
            block = f.read(min(CHUNK, stop - f.tell()))
            data = carry + block
            cut = data.rfind(b"\n") + 1 if block else len(data)
            data, carry = data[:cut], data[cut:]
            if not data:
                if block:
                    continue  # a line longer than a chunk goes on
                break
            if not block:
                data += b"\n"
            parsed = _block(data, delimiter, ncols, numeric, label)
            if parsed is None or done + len(parsed[0]) > rows:
                return None
            X[done : done + len(parsed[0])] = parsed[0]
            texts.append(parsed[1])
            done += len(parsed[0])
            if not block:
                break
    if done == 0:
        return None
    return X[:done], None if label is None else np.concatenate(texts)


def _block(data, delimiter, ncols, numeric, label):
    """(values (n, len(numeric)), label text (n,) or None) of complete lines `data`, or None."""
    if b'"' in data or b"\0" in data:
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None
    buf = np.frombuffer(data + bytes(WIDEST), np.uint8)  # padded: a cell's bytes are read up to WIDEST past it
    size = len(data)
    ends = np.flatnonzero((buf[:size] == ord(delimiter)) | (buf[:size] == NEWLINE))
    if len(ends) % ncols:
        return None
    newline = (buf[ends] == NEWLINE).reshape(-1, ncols)
    if not newline[:, -1].all() or newline[:, :-1].any():
        return None
    starts = np.empty_like(ends)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    starts, ends = starts.reshape(-1, ncols), ends.reshape(-1, ncols)
    first, last = starts[:, numeric], ends[:, numeric]
    values, plain = _plain_numbers(buf, first.ravel(), last.ravel())
    values, other = values.reshape(first.shape), np.nonzero(~plain.reshape(first.shape))
    if len(other[0]):
        text = _texts(buf, first[other], last[other])
        try:
            values[other] = text.astype(np.float64)
        except (ValueError, OverflowError, AttributeError):
            return None
        if not np.isfinite(values[other]).all():
            return None
    text = None
    if label is not None:
        text = _texts(buf, starts[:, label], ends[:, label])
        if text is None or (text == "").any():
            return None
    return values, text


def _plain_numbers(buf, starts, ends):
    """(values, plain) of the cells buf[starts:ends]: `plain` marks the cells [sign] digits [. digits] of 1 to 15
    digits, whose value is exact; the others' values are meaningless. Horner's rule, one byte of every cell at a
    time: m = 10·m + digit, k counting the digits after the point."""
    widths = ends - starts
    negative = buf[starts] == MINUS
    at = starts + (negative | (buf[starts] == PLUS))
    mantissa, digits, decimals = (np.zeros(len(starts), np.int64) for _ in range(3))
    point, bad = np.zeros(len(starts), bool), np.zeros(len(starts), bool)
    for _ in range(min(WIDEST, int(widths.max(initial=0)))):
        char, inside = buf[at], at < ends
        digit = char - ZERO  # wraps: a non-digit byte becomes >= 10
        isdigit = (digit < 10) & inside
        ispoint = (char == POINT) & inside
        bad |= (inside & ~isdigit & ~ispoint) | (ispoint & point)
        point |= ispoint
        mantissa[isdigit] = 10 * mantissa[isdigit] + digit[isdigit]
        digits += isdigit
        decimals += isdigit & point
        at += 1
    plain = ~bad & (digits >= 1) & (digits <= MAX_DIGITS) & (widths <= WIDEST)
    values = mantissa / POW10_FLOAT[np.minimum(decimals, WIDEST - 1)]  # exact m and 10**k: one correct rounding
    values[negative] *= -1
    return values, plain


def _cells(buf, starts, ends, width):
    """The bytes of each cell, (cells, width) uint8 padded with zeros."""
    j = np.arange(width)
    at = np.minimum(starts[:, None] + j, len(buf) - 1)
    return np.where(j < (ends - starts)[:, None], buf[at], 0).astype(np.uint8)


def _texts(buf, starts, ends):
    """The cells as stripped str, or None when one is not UTF-8."""
    widths = ends - starts
    chars = _cells(buf, starts, ends, max(1, int(widths.max(initial=0))))
    raw = chars.view(f"S{chars.shape[1]}").ravel()
    try:
        return np.char.strip(np.char.decode(raw, "utf-8"))
    except UnicodeDecodeError:
        return None
