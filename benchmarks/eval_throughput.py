"""Evaluation and predict throughput on a large memory-mapped NPY file, against the forward GEMMs alone.

`python benchmarks/train_throughput.py --eval` (default 1,000,000 × 784 float32 rows, net 784-256-10): writes the
features .npy and a labels .npy in bounded memory, trains a checkpoint for one epoch on 2,000 other rows, then
times, interleaved round by round, each in a fresh child process (peak RSS growth over the process after imports):

- gemm-only   the forward products x·W1 … x·WL of every 4,096-row chunk, on one resident chunk: the floor
- replay      the same products over the file's rows, each chunk copied from the memmap first
- eval        `evaluate_checkpoint(ckpt, features.npy, labels=labels.npy)` (what `nncli eval --data` runs)
- predict     `predict_to_file(ckpt, features.npy, out.csv)` (what `nncli predict` runs)

Issue 22's target: eval and predict at ≥ 0.8× the throughput of the forward GEMMs alone, peak memory ≤ 64 MiB
over the process after imports.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from peers import C, D, ForwardReplay, make_data

CHUNK = 4096
PROBES = ("gemm-only", "replay", "eval", "predict")


def write_npy(path, labels_path, n, seed=1):
    """features (n, 784) float32 and labels (n,) int64 from a random linear teacher, written 65,536 rows at a time."""
    rng = np.random.default_rng(seed)
    teacher = rng.standard_normal((D, C), dtype=np.float32)
    X = np.lib.format.open_memmap(path, "w+", np.float32, (n, D))
    y = np.lib.format.open_memmap(labels_path, "w+", np.int64, (n,))
    for start in range(0, n, 65536):
        block = rng.standard_normal((min(65536, n - start), D), dtype=np.float32)
        X[start : start + len(block)] = block
        y[start : start + len(block)] = (block @ teacher).argmax(axis=1)
    X.flush(), y.flush()
    del X, y


def train_checkpoint(tmp, hidden):
    """A checkpoint of `hidden` trained one epoch on 2,000 rows (the weights' values do not matter for speed)."""
    from train_throughput import nncli_config

    from nncli.training.trainer import Trainer

    X, y = make_data(2000)
    np.savez(Path(tmp) / "small.npz", X=X, y=y)
    config = nncli_config(Path(tmp) / "small.npz", hidden, 128, "float32")
    config.train.epochs = 1
    Trainer(config, Path(tmp) / "run", force=True).run()
    return Path(tmp) / "run" / "checkpoint.npz"


def _peak_rss():
    """(VmRSS, VmHWM) of this process in bytes."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return tuple(int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM"))


def probe(what, ckpt, features, labels, hidden, out):
    """Child process: time `what` once; print seconds and peak RSS growth over the process after imports."""
    import nncli.evaluation.evaluate as evaluate
    import nncli.evaluation.predict as predict

    X = np.load(features, mmap_mode="r")
    sizes = [D, *hidden, C]
    replay = ForwardReplay(X if what == "replay" else X[:CHUNK], sizes, CHUNK)
    base, _ = _peak_rss()
    Path("/proc/self/clear_refs").write_text("5")
    t0 = time.perf_counter()
    if what == "gemm-only":
        for _ in range(0, len(X), CHUNK):
            replay.run_epoch()  # one resident chunk, as many times as the file has chunks
    elif what == "replay":
        replay.run_epoch()
    elif what == "eval":
        evaluate.evaluate_checkpoint(ckpt, features, labels=labels)
    else:
        predict.predict_to_file(ckpt, features, out, force=True)
    seconds = time.perf_counter() - t0
    _, peak = _peak_rss()
    print(json.dumps({"seconds": seconds, "peak_growth": peak - base}))


def run_probe(what, ckpt, features, labels, hidden, out):
    cmd = [sys.executable, __file__, what, str(ckpt), str(features), str(labels), ",".join(map(str, hidden)), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def eval_benchmark(rows, hidden, repeats, tmp_dir=None):
    """Write the data, train the checkpoint, time every probe `repeats` times interleaved; print the lines."""
    with tempfile.TemporaryDirectory(dir=tmp_dir) as tmp:
        features, labels, out = Path(tmp) / "features.npy", Path(tmp) / "labels.npy", Path(tmp) / "out.csv"
        write_npy(features, labels, rows)
        ckpt = train_checkpoint(tmp, hidden)
        label = "-".join(map(str, [D, *hidden, C]))
        print(f"# eval {label}, {rows:,} × {D} float32 rows memory-mapped ({features.stat().st_size / 2**20:,.0f} MiB)")
        run_probe("replay", ckpt, features, labels, hidden, out)  # warm-up: the file into the page cache
        runs = {what: [] for what in PROBES}
        for _ in range(repeats):
            for what in PROBES:
                runs[what].append(run_probe(what, ckpt, features, labels, hidden, out))
    print("| probe | rows/s (median) | peak RSS growth MiB (max) |\n|---|---|---|")
    for what, r in runs.items():
        seconds = statistics.median(p["seconds"] for p in r)
        peak = max(p["peak_growth"] for p in r) / 2**20
        print(f"| {what} | {rows / seconds:,.0f} | {peak:.0f} |")
    for what in ("replay", "eval", "predict"):
        speed = sorted(g["seconds"] / p["seconds"] for g, p in zip(runs["gemm-only"], runs[what]))
        peak = max(p["peak_growth"] for p in runs[what]) / 2**20
        ok = statistics.median(speed) >= 0.8 and peak <= 64
        print(
            f"# eval {label}: {what} throughput / gemm-only throughput, round by round: median "
            f"{statistics.median(speed):.2f}, min {speed[0]:.2f} ({len(speed)} rounds); peak +{peak:.0f} MiB; "
            f"target ≥ 0.8× and ≤ 64 MiB: {'met' if ok else 'NOT met'}"
        )
    print(f"# eval load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    what, ckpt, features, labels, hidden, out = sys.argv[1:]
    probe(what, ckpt, features, labels, [int(h) for h in hidden.split(",")], out)
