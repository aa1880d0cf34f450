"""The pyarrow engine of the CSV reader: float()'s values bit for bit, or None (the careful scan then names the
problem), never anything else; absent pyarrow, it steps aside; `import nncli` never loads pyarrow."""

import subprocess
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.csv_reader import write_file  # the benchmark's own file, smaller
from nncli.config import DataConfig
from nncli.data import csvarrow, csvfast
from nncli.data.csvfile import read_csv
from nncli.data.dataset import load_features
from nncli.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
needs_pyarrow = pytest.mark.skipif(not csvarrow.available(), reason="pyarrow is not installed")


@pytest.fixture(autouse=True)
def small_files_too(monkeypatch):
    """The engine on these small files (it leaves data under MIN_BYTES to csvfast)."""
    monkeypatch.setattr(csvarrow, "MIN_BYTES", 0)


def arguments(path, delimiter=","):
    """parse's arguments the way read_csv makes them: every column but the last a feature, the last the label."""
    names, offset, stop, rows = csvfast.header(path, delimiter)
    return path, offset, stop, delimiter, len(names), list(range(len(names) - 1)), len(names) - 1, rows


def outcome(path, engine):
    """What read_csv gives with `engine` in the fast path's place (None: the careful scan alone): its values
    (X as raw bits, labels with their dtype, names) or the message of its DataError."""
    patch = {"parse": engine} if engine else {"header": lambda *a: None}
    with mock.patch.multiple(csvfast, **patch):
        try:
            X, y, names = load_features(path, DataConfig(source=str(path)), require_labels=True)
        except DataError as err:
            return str(err)
    return X.view(np.int64).tolist(), y.dtype.kind, y.tolist(), names


def same_as_careful(path):
    """The reader with the pyarrow engine (None from it falling back to the careful scan) gives exactly what the
    careful scan gives: the same values, or the same message."""
    assert outcome(path, csvarrow.parse) == outcome(path, None)


@needs_pyarrow
def test_a_benchmark_like_file_is_parsed_by_pyarrow_to_csvfast_s_values_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setattr(csvarrow, "CHUNK", 1 << 16)  # many slices, each cut at a line end
    path = tmp_path / "big.csv"
    write_file(path, 5_000)
    got = csvarrow.parse(*arguments(path))
    want = csvfast.parse(*arguments(path))
    assert got is not None and want is not None
    assert got[0].dtype == np.float64 and got[0].shape == (5_000, 19) and got[0].flags.c_contiguous
    assert np.array_equal(got[0].view(np.int64), want[0].view(np.int64))
    assert np.array_equal(got[1], want[1])
    same_as_careful(path)


NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.floats(-1e6, 1e6).map(lambda v: f"{v:.6f}"),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.17e}"),
    st.integers(-(10**20), 10**20).map(str),  # > 15 digits
    st.decimals(allow_nan=False, allow_infinity=False, places=20).map(str),
    st.sampled_from(["+3", ".5", "5.", "-0", "1E+05", "1e-3", "  7.25", "00012.500", "9007199254740993"]),
)
IRREGULAR = st.sampled_from(
    ['"1"', "", " ", "inf", "-inf", "nan", "NaN", "1e999", "1_0", "0x10", "e5", ".", "-", "1.2.3", "1\0", "oops"]
)
LABELS = st.one_of(st.sampled_from(["0", "1", "2", "1.0", " cat ", "dog", "é"]), st.sampled_from(["", '"a,b"', "x\0"]))


@st.composite
def tables(draw):
    """A small CSV as bytes: mostly regular cells, sometimes an irregular cell, line, label, BOM or line ending."""
    ncols = draw(st.integers(1, 4))
    lines = [",".join([f"f{i}" for i in range(ncols)] + ["y"])]
    for _ in range(draw(st.integers(1, 8))):
        cells = draw(st.lists(st.one_of(NUMBERS, NUMBERS, NUMBERS, IRREGULAR), min_size=ncols, max_size=ncols))
        label = draw(st.one_of(LABELS.filter(lambda s: s.strip() and '"' not in s and "\0" not in s), LABELS))
        line = ",".join([*cells, label])
        lines.append(draw(st.sampled_from([line, line, line, "", line + ",9", line.rpartition(",")[0]])))
    newline = draw(st.sampled_from(["\n", "\r\n"]))  # (a file of lone CRs: csvfile.detect_delimiter raises csv.Error)
    text = newline.join(lines) + draw(st.sampled_from(["", newline, newline * 3]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode()


@needs_pyarrow
@settings(max_examples=150, deadline=None)
@given(tables(), st.sampled_from([64, 1 << 24]))
def test_every_table_reads_as_the_careful_scan_reads_it(data, chunk):
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch, mock.patch.object(csvarrow, "CHUNK", chunk):
        path = Path(scratch) / "t.csv"
        path.write_bytes(data)
        same_as_careful(path)


@needs_pyarrow
@pytest.mark.parametrize(
    "row",
    [
        '"1.5",2,0',  # quotes
        "",  # a blank line
        "1,2",  # ragged: too few
        "1,2,0,4",  # ragged: too many
        "1\0,2,0",  # NUL
        "inf,2,0",
        "nan,2,0",
        "1,2,",  # an empty label
        "1,2,\0",
        "1_0,2,0",
        "1,2\r3,0",  # a lone CR
    ],
)
def test_an_irregular_line_is_left_to_the_careful_scan(tmp_path, row):
    path = tmp_path / "odd.csv"
    path.write_text("a,b,y\n1.25,3,0\n" + row + "\n2.5,4,1\n", newline="")
    assert csvarrow.parse(*arguments(path)) is None
    same_as_careful(path)


@needs_pyarrow
def test_bom_crlf_text_labels_long_numbers_and_no_last_newline_give_the_same_values(tmp_path):
    path = tmp_path / "pets.csv"
    rows = [b"%d.5,1234567890123456789,%de-3,%s" % (i, i, [b" cat", b"dog ", b"\xc3\xa9"][i % 3]) for i in range(30)]
    path.write_bytes(b"\xef\xbb\xbfw,h,e,kind\r\n" + b"\r\n".join(rows))
    got = csvarrow.parse(*arguments(path))
    assert got is not None and got[1][:3].tolist() == ["cat", "dog", "é"]
    same_as_careful(path)


@needs_pyarrow
def test_a_line_longer_than_a_slice_or_more_rows_than_counted_give_none(tmp_path, monkeypatch):
    path = tmp_path / "wide.csv"
    path.write_text("a,y\n" + "1." + "0" * 200 + ",1\n2,0\n")
    args = arguments(path)
    assert csvarrow.parse(*args[:-1], 1) is None  # two lines where one was counted
    monkeypatch.setattr(csvarrow, "CHUNK", 64)
    assert csvarrow.parse(*args) is None


@needs_pyarrow
def test_the_memory_budget_refuses_the_table_before_the_engine_parses_it(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    write_file(path, 2_000)
    monkeypatch.setenv("NNCLI_MEMORY_BUDGET", "100K")
    spy = mock.Mock(wraps=csvarrow.parse)
    monkeypatch.setattr(csvfast, "parse", spy)
    with pytest.raises(DataError, match=r"big.csv: its 2,000 rows × 20 columns, parsed, needs 312.5 KiB"):
        read_csv(path, None, None, True)
    assert not spy.called


def test_small_data_is_left_to_csvfast(tmp_path, monkeypatch):
    monkeypatch.setattr(csvarrow, "MIN_BYTES", 1 << 22)
    path = tmp_path / "t.csv"
    write_file(path, 100)
    assert csvarrow.parse(*arguments(path)) is None


def test_without_pyarrow_the_engine_steps_aside(tmp_path, monkeypatch):
    path = tmp_path / "t.csv"
    write_file(path, 10)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    csvarrow._pyarrow.cache_clear()
    try:
        assert not csvarrow.available() and csvarrow.parse(*arguments(path)) is None
    finally:
        csvarrow._pyarrow.cache_clear()


def test_importing_nncli_does_not_import_pyarrow():
    code = "import sys, nncli.cli, nncli.data.csvarrow; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
