"""The throughput benchmark still runs end to end (on a tiny problem): it is a deliverable, run on demand, so
nothing else would notice it breaking. Its numbers are not checked here; timing targets never live in tests."""

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def test_benchmark_prints_a_row_per_contender_and_paired_ratios():
    contenders = ["nncli", "numpy-f64", "nncli-f64", "replay", "replay-f64"]
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--samples",
            "1000",
            "--repeats",
            "2",
            "--nets",
            "16;8,8",
            "--batches",
            "64",
            "--contenders",
            ",".join(contenders),
            "--no-memory",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    table = out[out.index("| net | batch | contender") :]
    for net in ("784-16-10", "784-8-8-10"):
        for name in contenders:
            assert f"| {net} | 64 | {name} |" in table
        assert f"# {net} batch 64: nncli epoch / replay epoch, round by round: median" in out
    replay_row = next(line for line in table.splitlines() if line.startswith("| 784-16-10 | 64 | replay |"))
    assert (
        replay_row.endswith(" |") and "| — | 1.00 |" in replay_row
    )  # PyTorch not timed: "—"; the replay is its own unit


def test_benchmark_prints_the_norm_rows_and_their_paired_ratio_to_the_plain_net():
    contenders = ["nncli", "nncli-batchnorm", "nncli-layernorm"]
    out = subprocess.run(
        [sys.executable, str(BENCH), "--samples", "600", "--repeats", "2", "--nets", "8,8", "--batches", "64"]
        + ["--contenders", ",".join(contenders), "--no-memory"],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    table = out[out.index("| net | batch | contender") :]
    for name in contenders:
        assert f"| 784-8-8-10 | 64 | {name} |" in table
    for name in contenders[1:]:
        assert f"# 784-8-8-10 batch 64: {name} epoch / nncli epoch (no norm), round by round: median" in out
