"""Eval and predict on a memory-mapped .npy read it a chunk at a time: the process never holds a copy of the file.

numpy reports its allocations to tracemalloc and the pages of a memory map are not allocations, so the traced peak is
what eval or predict copied out of the file."""

import itertools
import tracemalloc
from pathlib import Path

import pytest

from nncli.config import load_config
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
    assert (
        peak < features.stat().st_size / 3
    )  # ~27 MB of chunks; the 102 MB file was copied whole to float64, then float32


def test_predict_of_a_large_npy_streams_its_rows_without_copying_the_file(big_file_and_checkpoint):
    features, _, ckpt = big_file_and_checkpoint

    def first_rows():
        header, rows = predict_file(ckpt, features)
        return header, list(itertools.islice(rows, 5000))  # two chunks: enough to see what the whole run holds

    (header, rows), peak = traced_peak(first_rows)
    assert header[0] == "predicted" and len(rows) == 5000
    assert peak < features.stat().st_size / 3
