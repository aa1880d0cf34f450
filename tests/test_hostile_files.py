"""Hostile and damaged files, as a user meets them: every size a file declares is checked before anything is
allocated, and every problem is exit 2 with the file named, no traceback, and memory never near the declared size."""

import gzip
import io
import json
import os
import re
import resource
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nncli.cli import app
from nncli.config import DataConfig
from nncli.data.dataset import class_ids, load_dataset, load_features
from nncli.errors import CheckpointError, DataError
from nncli.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
PEAK_LIMIT = 64 * 2**20  # what a refused file may make the process allocate (Python and NumPy, as tracemalloc sees)
HUGE = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"


def run(*args):
    """Invoke the CLI in-process; (result, peak bytes allocated while it ran)."""
    tracemalloc.start()
    try:
        result = runner.invoke(app, [str(a) for a in args])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, peak


def assert_refused(result, peak, *fragments):
    said = result.output.replace("\n", "")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert str(fragment) in said, (fragment, said)
    assert peak < PEAK_LIMIT, f"allocated {peak} bytes"
    return said


def npy(header, data=b""):
    """A .npy v1.0 stream with `header` (a dict's text) as written, padded as numpy pads it, then `data`."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) + pad + 1) + text + b" " * pad + b"\n" + data


def rewrite(npz, out, member, change):
    """Copy the archive `npz` to `out` with member `member`.npy's bytes replaced by change(bytes)."""
    with zipfile.ZipFile(npz) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, change(data) if info.filename == f"{member}.npy" else data)
    return out


def header_of(data):
    length = struct.unpack("<H", data[8:10])[0]
    return data[: 10 + length], data[10 + length :]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real run directory of a tiny spiral network: best.npz and the config it came from."""
    out = tmp_path_factory.mktemp("runs") / "spiral"
    config = ROOT / "configs/spiral-2layer.yaml"
    result = runner.invoke(
        app, ["train", str(config), "train.epochs=2", "data.samples_per_class=20", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out / "best.npz"


# Checkpoints: one member's header rewritten in a real best.npz


def test_a_checkpoint_member_declaring_a_trillion_values_is_refused_unallocated(trained, tmp_path):
    hostile = rewrite(trained, tmp_path / "best.npz", "W1", lambda data: npy(HUGE, header_of(data)[1]))
    result, peak = run("eval", hostile)
    assert_refused(result, peak, hostile, "'W1'", "(1000000000000,)", "holds only")
    with pytest.raises(CheckpointError, match="'W1' declares shape"):
        load_checkpoint(hostile)


def test_one_flipped_bit_in_a_header_is_a_checkpoint_error(trained, tmp_path):
    def flip(data):  # ')' (0x29) becomes '(' (0x28): an unbalanced parenthesis
        head, rest = header_of(data)
        at = head.rindex(b")")
        return head[:at] + bytes([head[at] ^ 1]) + head[at + 1 :] + rest

    hostile = rewrite(trained, tmp_path / "best.npz", "W1", flip)
    result, peak = run("predict", hostile, ROOT / "data/iris.csv")
    assert_refused(result, peak, hostile, "'W1'", "malformed .npy header")


def test_a_5001_digit_number_in_meta_is_a_checkpoint_error(trained, tmp_path):
    def huge_epoch(data):
        meta = json.loads(str(np.load(trained)["meta"]))
        text = json.dumps(meta).replace(f'"epoch": {meta["epoch"]}', '"epoch": 1' + "0" * 5000)
        buffer = io.BytesIO()
        np.save(buffer, np.array(text))
        return buffer.getvalue()

    hostile = rewrite(trained, tmp_path / "best.npz", "meta", huge_epoch)
    result, peak = run("eval", hostile)
    assert_refused(result, peak, hostile, "'meta' is not valid JSON")


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_a_checkpoint_with_non_positive_norm_std_is_refused_on_load(trained, tmp_path, value):
    def damage(data):
        head, rest = header_of(data)
        std = np.frombuffer(rest, "<f8").copy()
        std[1] = value
        return head + std.tobytes()

    hostile = rewrite(trained, tmp_path / "best.npz", "norm_std", damage)
    features = tmp_path / "x.csv"
    features.write_text("x1,x2\n0.5,0.5\n")
    result, peak = run("predict", hostile, features)
    assert_refused(result, peak, hostile, "'norm_std'", "not positive", "feature 1")
    with pytest.raises(CheckpointError, match="norm_std"):
        load_checkpoint(hostile)


def deflated_bomb(path, real_bytes, declared_size=None):
    """An .npz whose one deflated member X.npy inflates to `real_bytes` of zeros after a header declaring exactly
    that much; its zip headers then claim `declared_size` bytes (default: the truth)."""
    count = (real_bytes - 128) // 8
    stream = npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({count},), }}")
    squeeze, crc, parts = zlib.compressobj(9, zlib.DEFLATED, -15), zlib.crc32(stream), []
    parts.append(squeeze.compress(stream))
    zeros = bytes(2**20)
    for left in range(count * 8, 0, -len(zeros)):
        chunk = zeros[: min(left, len(zeros))]
        crc = zlib.crc32(chunk, crc)
        parts.append(squeeze.compress(chunk))
    parts.append(squeeze.flush())
    labels = npy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }")
    size = len(stream) + count * 8 if declared_size is None else declared_size
    members = [("X.npy", 8, crc, b"".join(parts), size), ("y.npy", 0, zlib.crc32(labels), labels, len(labels))]
    path.write_bytes(zip_of(members))
    return path


def zip_of(members):
    """A zip archive of (name, method 0 stored or 8 deflated, crc, stored bytes, claimed size) as written."""
    body, central = b"", b""
    for name, method, crc, data, size in members:
        n = name.encode()
        fields = (20, 0, method, 0, 0, crc, len(data), size, len(n))
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0, 0, len(body)) + n
        body += struct.pack("<4s5H3I2H", b"PK\x03\x04", *fields, 0) + n + data
    return (
        body
        + central
        + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(body), 0)
    )


def test_a_zip_bomb_declaring_less_than_it_inflates_is_refused_in_bounded_memory(tmp_path):
    bomb = deflated_bomb(tmp_path / "bomb.npz", 48 * 2**20, declared_size=4096)  # 48 MiB claimed as 4 KiB
    assert bomb.stat().st_size < 2**20
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {bomb}\n")
    result, peak = run("train", config, "--out", tmp_path / "run")
    assert_refused(result, peak, bomb, "'X'", "truncated or corrupt")
    assert not (tmp_path / "run" / "checkpoint.npz").exists()


def test_a_member_declaring_4_gib_is_refused_up_front_against_the_budget(tmp_path, monkeypatch):
    bomb = deflated_bomb(tmp_path / "bomb.npz", 2**20, declared_size=2**32 - 16)  # 1 MiB claimed as 4 GiB
    monkeypatch.setenv("NNCLI_MEMORY_BUDGET", "3G")  # as under a 3 GB limit
    result, peak = run("eval", bomb)
    assert_refused(result, peak, bomb, "4.0 GiB", "memory budget of 3.0 GiB", "NNCLI_MEMORY_BUDGET=3G")
    with pytest.raises(DataError, match="memory budget"):
        load_dataset(data_cfg(bomb), seed=0)


def test_an_address_space_limit_sets_the_budget(tmp_path):
    """In a process limited to 2 GiB of address space, a file declaring 4 GiB is refused, not a MemoryError."""
    bomb = deflated_bomb(tmp_path / "bomb.npz", 2**20, declared_size=2**32 - 16)
    config = tmp_path / "c.yaml"
    config.write_text(f"data:\n  source: {bomb}\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    env.pop("NNCLI_MEMORY_BUDGET", None)
    done = subprocess.run(
        [sys.executable, "-m", "nncli", "train", str(config), "--out", str(tmp_path / "run")],
        env=env,
        preexec_fn=limit,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "memory budget" in done.stderr and "bomb.npz" in done.stderr


# Data files


def data_cfg(source, **overrides):
    """A data config with DataConfig's defaults, not validated."""
    return DataConfig.model_construct(source=str(source), **overrides)


def train(tmp_path, data):
    config = tmp_path / "c.yaml"
    config.write_text(
        "data:\n" + "".join(f"  {key}: {value}\n" for key, value in data.items()) + "train:\n  epochs: 2\n"
    )
    return run("train", config, "--out", tmp_path / "run", "--quiet")


def test_a_data_npy_declaring_a_trillion_values_is_refused(tmp_path):
    labels = tmp_path / "y.npy"
    np.save(labels, np.arange(10) % 2)
    features = tmp_path / "X.npy"
    features.write_bytes(npy(HUGE, bytes(80)))
    result, peak = train(tmp_path, {"source": features, "labels": labels})
    assert_refused(result, peak, features, "(1000000000000,)", "holds only")


def test_a_labels_npy_declaring_a_trillion_values_is_refused(tmp_path):
    features = tmp_path / "X.npy"
    np.save(features, np.zeros((10, 2)))
    labels = tmp_path / "y.npy"
    labels.write_bytes(npy(HUGE.replace("<f8", "<i8"), bytes(80)))
    result, peak = train(tmp_path, {"source": features, "labels": labels})
    assert_refused(result, peak, "labels file", labels, "(1000000000000,)")


def test_a_data_npz_member_declaring_a_trillion_values_is_refused(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, X=np.zeros((10, 2)), y=np.arange(10) % 2)
    hostile = rewrite(good, tmp_path / "d.npz", "X", lambda data: npy(HUGE, header_of(data)[1]))
    result, peak = train(tmp_path, {"source": hostile})
    assert_refused(result, peak, hostile, "'X'", "(1000000000000,)")
    with pytest.raises(DataError, match=r"d.npz: array 'X' declares shape \(1000000000000,\)"):
        load_features(hostile, data_cfg(hostile), require_labels=True)


def idx(path, dims, data=b"", ndim=None):
    raw = bytes([0, 0, 0x08, len(dims) if ndim is None else ndim]) + struct.pack(f">{len(dims)}I", *dims) + data
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(raw)
    return path


@pytest.mark.parametrize(
    "dims, ndim, data, fragment",
    [
        ((1,) * 255, 255, 1, "declares 255 dimensions"),
        ((0, 28, 28), None, 0, "holds no samples"),
        ((2**31, 2**31, 4), None, 0, "2147483648x2147483648x4 values of uint8 (18446744073709551616 bytes)"),
    ],
)
def test_idx_headers_that_cannot_be_data_are_data_errors(tmp_path, dims, ndim, data, fragment):
    """ndim 255, no samples, and dimensions whose product overflows 64 bits (to 0: numpy's count)."""
    images = idx(tmp_path / "train-images-idx3-ubyte", dims, bytes(data), ndim)
    labels = idx(tmp_path / "train-labels-idx1-ubyte", (16,), bytes(16))
    result, peak = train(tmp_path, {"source": images, "labels": labels})
    assert_refused(result, peak, images, fragment)
    with pytest.raises(DataError, match=re.escape(fragment)):
        load_features(images, data_cfg(images), require_labels=False)


def test_an_idx_gz_declaring_4_gib_is_refused_before_decompressing(tmp_path):
    images = idx(tmp_path / "train-images-idx3-ubyte.gz", (2**22, 32, 32), bytes(2**16))
    with pytest.raises(DataError, match="more than a gzip file of .* bytes can hold"):
        load_features(images, data_cfg(images), require_labels=False)
    labels = idx(tmp_path / "train-labels-idx1-ubyte", (16,), bytes(16))
    result, peak = train(tmp_path, {"source": images, "labels": labels})
    assert_refused(result, peak, images, "4294967296 bytes")


def test_an_idx_gz_larger_than_the_budget_is_refused_before_decompressing(tmp_path, monkeypatch):
    images = idx(tmp_path / "train-images-idx3-ubyte.gz", (4096, 32, 32), bytes(4096 * 1024))
    monkeypatch.setenv("NNCLI_MEMORY_BUDGET", "1M")
    with pytest.raises(DataError, match=r"4.0 MiB, more than the memory budget of 1.0 MiB \(NNCLI_MEMORY_BUDGET=1M\)"):
        load_features(images, data_cfg(images), require_labels=False)


def test_a_generated_dataset_beyond_the_budget_is_refused_with_its_estimate(tmp_path):
    result, peak = train(tmp_path, {"source": "blobs", "samples": 10_000_000, "dimensions": 10_000})
    assert_refused(result, peak, "data.source blobs", "10,000,000 samples of 10,000 features", "TiB", "memory budget")


@pytest.mark.parametrize("value", ["1.7e308", "-1.7e308"])
def test_features_whose_standardization_overflows_are_a_data_error_not_divergence(tmp_path, value):
    rows = [f"{i * 0.1},{value if i == 3 else i % 7},{i % 2}" for i in range(40)]
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    result, peak = train(tmp_path, {"source": data})
    said = assert_refused(result, peak, data, "feature 'b'", "out of range", "not the learning rate")
    assert "diverged" not in said
    with pytest.raises(DataError, match="d.csv: feature 'b' reaches"):
        load_dataset(data_cfg(data), seed=0)


def test_features_beyond_float32_without_standardization_are_a_data_error(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 2))
    X[5, 0] = 1e39
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(40) % 2)
    with pytest.raises(DataError, match=r"d.npz: feature 0 \(0-based\) reaches 1e\+39; it does not fit in float32"):
        load_dataset(data_cfg(tmp_path / "d.npz", standardize=False), seed=0)


def test_csv_labels_1_and_1_0_are_one_class(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("x,label\n" + "".join(f"{i},{['1', '1.0', '2', '2.0', '01'][i % 5]}\n" for i in range(20)))
    X, y, _ = load_features(data, data_cfg(data), require_labels=True)
    classes, ids = class_ids(y, data)
    assert classes == [1, 2] and ids.tolist() == [[0, 0, 1, 1, 0][i % 5] for i in range(20)]
    text = tmp_path / "t.csv"
    text.write_text("x,label\n0,a\n1,1.5\n2,b\n3,1.5\n")
    assert class_ids(load_features(text, data_cfg(text), require_labels=True)[1], text)[0] == ["1.5", "a", "b"]


def test_a_memory_error_anywhere_is_a_clear_exit_2(monkeypatch, trained):
    def exhausted(*args, **kwargs):
        raise MemoryError("Unable to allocate 745. GiB for an array")

    monkeypatch.setattr("nncli.training.checkpoint._parse", exhausted)  # as if a huge array ran out of memory
    result, _ = run("eval", trained)
    assert_refused(result, 0, "out of memory", "745. GiB", "too large")
