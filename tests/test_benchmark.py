"""The throughput benchmark still runs end to end (on a tiny problem): it is a deliverable, run on demand, so
nothing else would notice it breaking. Its numbers are not checked here; timing targets never live in tests."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def run_bench(*args, env=None):
    """Run the benchmark on a tiny problem; a later option in `args` overrides a default one (argparse keeps the last)."""
    return subprocess.run(
        [sys.executable, str(BENCH), "--samples", "600", "--repeats", "2", "--nets", "8", "--no-memory", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
        env=env,
    )


def test_benchmark_prints_a_row_per_contender_and_paired_ratios():
    contenders = ["nncli", "numpy-f64", "nncli-f64", "replay", "replay-f64"]
    out = run_bench(
        "--samples", "1000", "--nets", "16;8,8", "--batches", "64", "--contenders", ",".join(contenders)
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
    out = run_bench("--nets", "8,8", "--batches", "64", "--contenders", ",".join(contenders)).stdout
    table = out[out.index("| net | batch | contender") :]
    for name in contenders:
        assert f"| 784-8-8-10 | 64 | {name} |" in table
    for name in contenders[1:]:
        assert f"# 784-8-8-10 batch 64: {name} epoch / nncli epoch (no norm), round by round: median" in out


def test_benchmark_prints_paired_ratios_with_min_and_median_the_load_and_each_target_met_or_not():
    out = run_bench("--batches", "256", "--contenders", "nncli,replay,nncli-f64,replay-f64").stdout
    head = "# 784-8-10 batch 256: "
    assert "load average" in out.splitlines()[0]
    for pair in ("nncli epoch / replay epoch", "nncli-f64 epoch / replay-f64 epoch"):
        line = next(line for line in out.splitlines() if line.startswith(f"{head}{pair}, round by round"))
        assert ", min " in line and "(2 rounds)" in line
    targets = next(line for line in out.splitlines() if line.startswith(f"{head}targets"))
    assert "nncli ≤ 1.2× replay: " in targets and "nncli-f64 ≤ 1.25× replay-f64: " in targets
    assert f"{head}load average now " in out


@pytest.mark.skipif(not os.environ.get("NNCLI_SLOW_TESTS"), reason="imports and compiles JAX: NNCLI_SLOW_TESTS=1")
def test_benchmark_times_jax_and_prints_the_bound_a_speed_target_implies_on_the_replay():
    pytest.importorskip("jax")
    out = run_bench("--batches", "256", "--contenders", "nncli,jax,replay").stdout
    head = "# 784-8-10 batch 256: "
    assert "| 784-8-10 | 256 | jax |" in out
    assert f"{head}nncli speed / JAX jit speed, round by round: median " in out
    assert f"{head}JAX jit takes " in out and "1.05× JAX jit means ≤ " in out and "against the target ≤ 1.2×" in out
    targets = next(line for line in out.splitlines() if line.startswith(f"{head}targets"))
    assert "≥ 1.05× JAX jit: " in targets and "nncli ≤ 1.2× replay: " in targets


def test_benchmark_without_jax_skips_it_with_a_note_and_times_the_rest(tmp_path):
    fake = tmp_path / "jax"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('No module named jax (hidden by the test)')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    done = run_bench("--batches", "128", "--contenders", "nncli,jax,replay", env=env)
    assert "# skipping jax: No module named jax" in done.stdout
    assert "Traceback" not in done.stderr
    assert "| 784-8-10 | 128 | nncli |" in done.stdout and "| jax |" not in done.stdout
    assert "# 784-8-10 batch 128: targets (median of per-round ratios): nncli ≤ 1.35× replay: " in done.stdout


@pytest.mark.skipif(not os.environ.get("NNCLI_SLOW_TESTS"), reason="five child processes: NNCLI_SLOW_TESTS=1")
def test_eval_benchmark_prints_every_probe_and_its_ratio_to_the_forward_gemms_alone():
    out = run_bench("--eval", "--eval-rows", "3000", "--repeats", "1").stdout
    assert "# eval 784-8-10, 3,000 × 784 float32 rows memory-mapped" in out
    for probe in ("gemm-only", "replay", "eval", "predict"):
        assert f"| {probe} | " in out
    for probe in ("replay", "eval", "predict"):
        line = next(line for line in out.splitlines() if line.startswith(f"# eval 784-8-10: {probe} throughput"))
        assert "/ gemm-only throughput, round by round: median " in line and "target ≥ 0.8× and ≤ 64 MiB: " in line
