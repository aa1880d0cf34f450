"""Eval and predict on a memory-mapped .npy read it a chunk at a time: the process never holds a copy of the file.

numpy reports its allocations to tracemalloc and the pages of a memory map are not allocations, so the traced peak is
what eval or predict copied out of the file."""

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nncli.config import load_config
from nncli.data.dataset import Split
from nncli.evaluation.evaluate import evaluate_checkpoint
from nncli.evaluation.predict import predict_file
from nncli.training.trainer import train
from tests.test_predict import npy_dataset as write_npy_dataset

ROOT = Path(__file__).resolve().parent.parent


def npy_dataset(folder, rows):
    """A float32 .npy features file of `rows` rows (written in pieces) and its labels, in a new folder."""
    folder.mkdir()
    return write_npy_dataset(folder, rows)


@pytest.fixture(scope="module")
def big_file_and_checkpoint(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evalmem")
    small, small_labels = npy_dataset(tmp / "small", 2000)
    overrides = [f"data.source={small}", f"data.labels={small_labels}", "data.classes=null"]
    overrides += ["data.samples_per_class=null", "data.noise=null", "model.hidden=[16]", "train.epochs=2"]
    summary = train(load_config(ROOT / "configs/spiral-2layer.yaml", overrides), tmp / "run")
    assert summary["status"] == "completed"
    return (*npy_dataset(tmp / "big", 100_000), tmp / "run" / "best.npz")


def traced_peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_eval_of_a_large_npy_never_copies_the_whole_file(big_file_and_checkpoint):
    features, labels, ckpt = big_file_and_checkpoint
    report, peak = traced_peak(lambda: evaluate_checkpoint(ckpt, features, labels=labels))
    assert report["samples"] == 100_000 and report["accuracy"] > 0.9
    # the 102 MB file was once copied whole to float64, then float32; then two 4 MB chunks were held at once (12.6 MB);
    # now one chunk buffer is reused (8.4 MB with the network's buffers)
    chunk_bytes = 4096 * np.load(features, mmap_mode="r").shape[1] * 4
    assert peak < 2.5 * chunk_bytes


def test_predict_of_a_large_npy_streams_its_rows_without_copying_the_file(big_file_and_checkpoint):
    features, _, ckpt = big_file_and_checkpoint

    def first_rows():
        header, chunks = predict_file(ckpt, features)
        return header, list(itertools.islice(chunks, 2))  # two chunks: enough to see what the whole run holds

    (header, chunks), peak = traced_peak(first_rows)
    assert header[0] == "predicted" and sum(rows for rows, _ in chunks) == 2 * 4096
    assert peak < features.stat().st_size / 3


def test_a_standardized_chunk_of_a_memory_mapped_split_holds_little_more_than_itself(tmp_path):
    """Standardizing a chunk of a lazy split (eval's 4,096 rows of a .npy) works block by block: its float64
    temporaries no longer take four times the chunk (the raw copy, x − mean, then / std, then the cast), and the
    result is the very same numbers."""
    features, _ = npy_dataset(tmp_path / "data", 5000)
    X = np.load(features, mmap_mode="r")
    mean, std = np.asarray(X[:100], np.float64).mean(axis=0), np.asarray(X[:100], np.float64).std(axis=0) + 0.5
    split = Split(X, np.zeros(len(X), np.int64), index=np.arange(len(X)), mean=mean, std=std, dtype=np.float32)
    rows = np.arange(300, 300 + 4096)
    chunk, peak = traced_peak(lambda: split.batch(rows))
    np.testing.assert_array_equal(chunk, ((np.asarray(X[rows]) - mean) / std).astype(np.float32))
    assert peak < 1.5 * chunk.nbytes
