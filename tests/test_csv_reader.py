"""The CSV reader: the fast path gives float()'s values exactly, delimiters are detected or set, big files are
refused before parsing, and a bad cell is still named by line and column."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.csv_reader import write_file  # the benchmark's own file, smaller
from nncli.cli import app
from nncli.config import DataConfig
from nncli.data.dataset import load_features
from nncli.errors import DataError


def cfg(source, **overrides):
    return DataConfig.model_construct(source=str(source), **overrides)


def careful(path, delimiter=","):
    """What the reader has always given: float() of every stripped feature cell, and the label cells as text."""
    with open(path, newline="") as f:
        rows = [row for row in csv.reader(f, delimiter=delimiter, skipinitialspace=True) if row]
    return np.array([[float(c) for c in row[:-1]] for row in rows[1:]]), [row[-1].strip() for row in rows[1:]]


def test_a_benchmark_like_file_reads_to_exactly_the_values_of_float(tmp_path):
    path = tmp_path / "big.csv"
    write_file(path, 30_000)  # several read chunks
    X, y, names = load_features(path, cfg(path), require_labels=True)
    want, labels = careful(path)
    assert X.dtype == np.float64 and np.array_equal(X.view(np.int64), want.view(np.int64))  # bit for bit, -0.0 too
    assert y.dtype == np.int64 and y.tolist() == [int(v) for v in labels]
    assert names == [f"x{i}" for i in range(19)]


def test_every_spelling_of_a_number_gets_float_s_value(tmp_path):
    cells = [
        "0.1",
        "-0.000000",
        "+3",
        ".5",
        "5.",
        "1e-3",
        "-2.5E+10",
        "123456789012345",
        "1234567890123456789",
        "0.30000000000000004",
        "  7.25",
        "1_0",
        "00012.500",
        "9007199254740993",
        "4",
    ]
    rows = [f"{c},{i % 2}" for i, c in enumerate(cells)]
    path = tmp_path / "spellings.csv"
    path.write_text("a,y\n" + "\n".join(rows) + "\n")
    X, y, _ = load_features(path, cfg(path), require_labels=True)
    assert np.array_equal(X[:, 0].view(np.int64), np.array([float(c) for c in cells]).view(np.int64))


def test_text_labels_crlf_and_a_bom_take_the_fast_path_with_the_same_result(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_bytes(
        b"\xef\xbb\xbfw,h,kind\r\n"
        + b"".join(b"%d.5,%d,%s\r\n" % (i, i * 2, b"cat dog"[i % 2 * 4 :][:3]) for i in range(40))
        + b"\r\n\r\n"
    )
    X, y, names = load_features(path, cfg(path), require_labels=True)
    assert names == ["w", "h"] and X[3].tolist() == [3.5, 6.0] and list(y[:2]) == ["cat", "dog"]


def test_a_bad_cell_far_into_a_big_file_is_named_by_line_and_column(tmp_path):
    path = tmp_path / "big.csv"
    write_file(path, 20_000)
    lines = path.read_text().splitlines()
    cells = lines[15_000].split(",")
    cells[4] = "oops"
    lines[15_000] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"big.csv: line 15001, column 'x4': 'oops' is not a number"):
        load_features(path, cfg(path), require_labels=True)


def test_a_table_too_big_for_memory_is_refused_before_parsing_with_the_estimate(tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    write_file(path, 2_000)
    path.write_text(path.read_text() + "oops" + ",1" * 19 + "\n")  # a bad cell the parse would name
    monkeypatch.setenv("NNCLI_MEMORY_BUDGET", "100K")
    with pytest.raises(
        DataError,
        match=r"big.csv: its 2,001 rows × 20 columns, parsed, needs 312.7 KiB, more than "
        r"the memory budget of 100.0 KiB \(NNCLI_MEMORY_BUDGET=100K\)",
    ):
        load_features(path, cfg(path), require_labels=True)


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_the_delimiter_is_detected_from_the_header(tmp_path, delimiter):
    path = tmp_path / "wine.csv"
    rows = [["Alcohol %", "Malic acid", "class"], ["13.2", "1.78", "1"], ["12.4", "2,5", "2"]]  # a decimal comma: text
    rows[2][1] = "2.5"
    path.write_text("".join(delimiter.join(r) + "\n" for r in rows))
    X, y, names = load_features(path, cfg(path, target="class"), require_labels=True)
    assert names == ["Alcohol %", "Malic acid"] and X.tolist() == [[13.2, 1.78], [12.4, 2.5]] and y.tolist() == [1, 2]


def test_a_quoted_semicolon_file_is_detected_too(tmp_path):
    path = tmp_path / "wine.csv"
    path.write_text('"Alcohol %";"Malic acid";"class"\n13.2;1.78;"a"\n12.4;2.5;"b"\n')
    X, y, names = load_features(path, cfg(path, target="class"), require_labels=True)
    assert names == ["Alcohol %", "Malic acid"] and X.tolist() == [[13.2, 1.78], [12.4, 2.5]] and list(y) == ["a", "b"]


def test_data_delimiter_is_a_config_key_and_wins_over_detection(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b|c|d\n1;2\n")  # detection would split the header on '|', into three columns
    X, y, names = load_features(path, cfg(path, delimiter=";"), require_labels=True)
    assert names == ["a"] and X.tolist() == [[1.0]] and y.tolist() == [2]
    assert DataConfig(source="t.csv", delimiter="\t").delimiter == "\t"
    with pytest.raises(ValueError, match=r"delimiter\n  Input should be ',', ';', '\\t' or '\|'"):
        DataConfig(source="t.csv", delimiter=":")


def test_a_header_read_as_one_column_names_the_delimiter_it_holds(tmp_path):
    path = tmp_path / "wine.csv"
    path.write_text("Alcohol %;Malic acid;class\n13.2;1.78;1\n")
    with pytest.raises(
        DataError,
        match=r"wine.csv: the header reads as one column \('Alcohol %;Malic acid;class'\) "
        r"split by ',', but it contains ';'; set data.delimiter to ';'",
    ):
        load_features(path, cfg(path, target="class", delimiter=","), require_labels=True)


def test_the_cli_answers_a_wrong_delimiter_with_exit_2_and_no_traceback(tmp_path):
    data = tmp_path / "wine.csv"
    data.write_text("a;b;class\n" + "".join(f"{i}.5;{i};{i % 2}\n" for i in range(20)))
    config = tmp_path / "wine.yaml"
    config.write_text(f"data: {{source: '{data}', target: class, delimiter: ','}}\ntrain: {{epochs: 1}}\n")
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "contains ';'; set data.delimiter to ';'" in " ".join(result.output.split())
    assert not (tmp_path / "run").exists()


def test_the_reader_benchmark_prints_each_installed_reader_with_identical_values(tmp_path):
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "csv_reader.py"
    args = [sys.executable, str(bench), "--rows", "2000", "--repeats", "1", "--dir", str(tmp_path)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = {line.split("  ")[0].strip(): line for line in out.splitlines()[4:]}
    assert {"nncli", "nncli careful", "np.loadtxt"} <= set(rows)
    assert all("identical to nncli" in row or "not installed" in row for row in rows.values())
