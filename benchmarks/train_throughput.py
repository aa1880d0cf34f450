"""Training throughput of nncli against PyTorch, scikit-learn, a straightforward NumPy net and the GEMM-only floor.

MNIST-shaped data (60,000 × 784 standard-normal features, 10 classes from a random linear teacher), nets
784-256-10 and 784-512-256-10, SGD with momentum 0.9, softmax cross-entropy, L2 1e-4, float32.

Contenders, timed one epoch at a time, interleaved (every contender runs one epoch before any runs its next),
after one untimed warm-up epoch each (JAX compiles its step there); the table reports the median epoch, and
for every pair that matters the per-round ratios (each pair timed back to back) with their median and minimum,
the bound each speed target implies on nncli's epoch over the replay's, and each of issue 22's targets met or not:

- nncli          the Trainer's real `_epoch` (what `nncli train` runs), on a Split loaded by `load_dataset`
- nncli-f64      the same in float64
- nncli-batchnorm, nncli-layernorm   the same nncli net with model.norm set (a norm after each hidden affine);
                 their epoch time over nncli's, paired round by round, is the price of the norm layers
- jax            one `jax.jit` step: batch gathered by a jitted take, `jax.value_and_grad`, momentum (optional:
                 skipped with a note when jax is not installed)
- pytorch        nn.Sequential + CrossEntropyLoss + optim.SGD (weight decay on weights only), `loss.item()` per step
- sklearn        MLPClassifier(solver="sgd").partial_fit, one epoch per call, float32 input
- numpy-f64      a straightforward float64 NumPy net: new arrays every step
- replay         only the step's matrix products (same shapes and transposes, `out=` buffers): the floor

Peak memory is measured for nncli alone, in a child process: growth of peak RSS over the process after imports,
while loading the data and while training one epoch, against the dataset's size.

    python benchmarks/train_throughput.py                    # full run, several minutes
    python benchmarks/train_throughput.py --samples 10000 --repeats 3   # quick look
    python benchmarks/train_throughput.py --breakdown         # GEMM time inside nncli's epoch vs the replay
    python benchmarks/train_throughput.py --eval --nets 256 --repeats 3   # eval/predict, 1M rows (eval_throughput.py)
    python benchmarks/train_throughput.py --nets 512,256 --batches 256 --repeats 9 --no-memory \
        --contenders nncli,nncli-batchnorm,nncli-layernorm    # what a norm layer costs

`--breakdown` answers "are the matrix products slower inside the step than alone?": it times every `np.matmul`
inside nncli's real epoch and inside the replay (the same wrapper around both) and prints the GEMM seconds, their
GFLOP/s, and what is left for everything else (gather, update, loss, activations, Python).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from peers import (
    L2,
    LR,
    MOMENTUM,
    C,
    D,
    GemmReplay,
    JaxContender,
    SklearnContender,
    StraightforwardNumpy,
    TorchContender,
    flops_per_sample,
    make_data,
)

NORM_CONTENDERS = {"nncli-batchnorm": "batchnorm", "nncli-layernorm": "layernorm"}  # the same nncli net, norm added


def nncli_config(path, hidden, batch, dtype, norm="none"):
    from nncli.config import config_from_dict

    return config_from_dict(
        {
            "name": "bench",
            "seed": 0,
            "data": {"source": str(path), "val_fraction": 0.0, "standardize": False},
            "model": {"hidden": list(hidden), "activation": "relu", "norm": norm},
            "loss": "softmax",
            "regularization": {"l2": L2},
            "optimizer": {"name": "momentum", "lr": LR, "momentum": MOMENTUM},
            "train": {"batch_size": batch, "dtype": dtype, "epochs": 1000},
        }
    )


class NncliContender:
    """nncli's training loop exactly as `nncli train` runs it, minus checkpoints and logging between epochs;
    `fused=False` runs every step as the plain one (backward fills the gradient, then the optimizer's step)."""

    def __init__(self, data_path, run_dir, hidden, batch, dtype="float32", norm="none", fused=True):
        from nncli.training.trainer import Trainer

        self.trainer = Trainer(nncli_config(data_path, hidden, batch, dtype, norm), run_dir, force=True)
        self.split, self.batch, self.epoch, self.fused = self.trainer.data.train, batch, 0, fused
        self.xb = np.empty((batch, self.trainer.data.num_features), self.trainer.dtype)

    def run_epoch(self):
        import nncli.training.trainer as trainer

        fold = trainer.fused_update
        if not self.fused:
            trainer.fused_update = lambda *args: None  # looked up at each epoch's start
        try:
            self.trainer._epoch(self.split, self.xb, self.batch, LR, self.epoch)
        finally:
            trainer.fused_update = fold
        self.epoch += 1


def rss_bytes():
    """(current, peak) resident set size of this process, from /proc."""
    status = Path("/proc/self/status").read_text()
    field = {
        line.split(":")[0]: int(line.split()[1]) * 1024
        for line in status.splitlines()
        if line.startswith(("VmRSS", "VmHWM"))
    }
    return field["VmRSS"], field["VmHWM"]


def reset_peak_rss():
    """Make VmHWM start again from the current RSS (Linux: write 5 to clear_refs); False when not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(data_path, hidden, batch):
    """Child process: peak RSS growth while loading the data and while training one epoch."""
    import nncli.training.trainer as trainer  # noqa: F401  (imports count toward the baseline, not the training)

    base, _ = rss_bytes()
    reset_peak_rss()
    with tempfile.TemporaryDirectory() as tmp:
        contender = NncliContender(data_path, Path(tmp) / "run", hidden, batch)
        loaded, load_peak = rss_bytes()
        resettable = reset_peak_rss()
        contender.run_epoch()
        _, train_peak = rss_bytes()
    print(
        json.dumps(
            {
                "base": base,
                "load_peak": load_peak,
                "loaded": loaded,
                "train_peak": train_peak,
                "train_peak_exact": resettable,
            }
        )
    )


def probe_memory(data_path, hidden, batch):
    cmd = [
        sys.executable,
        __file__,
        "--memory-probe",
        str(data_path),
        "--hidden",
        ",".join(map(str, hidden)),
        "--batch",
        str(batch),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def build_contenders(names, X, y, data_path, tmp, hidden, batch):
    contenders = {}
    for name in names:
        try:
            if name == "nncli":
                contenders[name] = NncliContender(data_path, Path(tmp) / f"run-{name}", hidden, batch)
            elif name == "nncli-unfused":
                contenders[name] = NncliContender(data_path, Path(tmp) / f"run-{name}", hidden, batch, fused=False)
            elif name == "nncli-f64":
                contenders[name] = NncliContender(data_path, Path(tmp) / f"run-{name}", hidden, batch, "float64")
            elif name in NORM_CONTENDERS:
                run_dir = Path(tmp) / f"run-{name}"
                contenders[name] = NncliContender(data_path, run_dir, hidden, batch, norm=NORM_CONTENDERS[name])
            elif name == "jax":
                contenders[name] = JaxContender(X, y, hidden, batch)
            elif name == "pytorch":
                contenders[name] = TorchContender(X, y, hidden, batch)
            elif name == "sklearn":
                contenders[name] = SklearnContender(X, y, hidden, batch)
            elif name == "numpy-f64":
                contenders[name] = StraightforwardNumpy(X, y, hidden, batch)
            elif name == "replay":
                contenders[name] = GemmReplay(len(y), hidden, batch)
            elif name == "replay-f64":
                contenders[name] = GemmReplay(len(y), hidden, batch, np.float64)
        except ImportError as e:
            print(f"# skipping {name}: {e}", flush=True)
    return contenders


def time_interleaved(contenders, repeats):
    for c in contenders.values():
        c.run_epoch()  # warm-up: buffers, caches, lazy initialisation
    times = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, c in contenders.items():
            t0 = time.perf_counter()
            c.run_epoch()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}, times


def ratios(numerators, denominators, scale=1.0):
    """Per-round ratios scale·a/b of epochs timed back to back in the same round (slow drift in load cancels in each
    pair), sorted."""
    return sorted(scale * a / b for a, b in zip(numerators, denominators))


def paired_ratios(numerators, denominators):
    """The per-round ratios a/b as 'median m, min lo, max hi (n rounds)'."""
    r = ratios(numerators, denominators)
    return f"median {statistics.median(r):.2f}, min {r[0]:.2f}, max {r[-1]:.2f} ({len(r)} rounds)"


PEER_NAMES = {"jax": "JAX jit", "pytorch": "PyTorch", "sklearn": "scikit-learn", "numpy-f64": "straightforward f64"}
# issue 22's targets: nncli at least `factor`× faster than the peer (median of the per-round ratios)
SPEED_TARGETS = {"jax": 1.05, "pytorch": 1.5}


def replay_target(batch):
    """Issue 22's bound on nncli's epoch over the replay's: 1.2 at batch ≥ 256, 1.35 below."""
    return 1.2 if batch >= 256 else 1.35


def pair_lines(times, batch):
    """The paired comparisons of one net and batch, as text lines: nncli against every peer and against the replay,
    the norm rows against nncli, the bound each speed target implies on nncli's epoch over the replay's (so a target
    no trainer can meet shows as such), and each target met or not (median of the per-round ratios)."""
    lines, verdicts = [], []

    def verdict(what, value, ok):
        verdicts.append(f"{what}: {value:.2f} {'met' if ok else 'NOT met'}")

    for peer, name in PEER_NAMES.items():
        if peer in times and "nncli" in times:
            lines.append(f"nncli speed / {name} speed, round by round: {paired_ratios(times[peer], times['nncli'])}")
            if peer in SPEED_TARGETS:
                m = statistics.median(ratios(times[peer], times["nncli"]))
                verdict(f"≥ {SPEED_TARGETS[peer]}× {name}", m, m >= SPEED_TARGETS[peer])
    for ours, floor, bound in (("nncli", "replay", replay_target(batch)), ("nncli-f64", "replay-f64", 1.25)):
        if ours in times and floor in times:
            lines.append(f"{ours} epoch / {floor} epoch, round by round: {paired_ratios(times[ours], times[floor])}")
            m = statistics.median(ratios(times[ours], times[floor]))
            verdict(f"{ours} ≤ {bound}× {floor}", m, m <= bound)
    if "nncli-unfused" in times and "nncli" in times:
        lines.append(
            "nncli-unfused epoch / nncli epoch (the update folded into backward), round by round: "
            f"{paired_ratios(times['nncli-unfused'], times['nncli'])}"
        )
    for name in NORM_CONTENDERS:
        if name in times and "nncli" in times:
            lines.append(
                f"{name} epoch / nncli epoch (no norm), round by round: {paired_ratios(times[name], times['nncli'])}"
            )
    for peer, factor in SPEED_TARGETS.items():
        if peer in times and "replay" in times:
            r = ratios(times[peer], times["replay"], 1 / factor)
            lines.append(
                f"{PEER_NAMES[peer]} takes {statistics.median(r) * factor:.2f}× the replay; {factor}× {PEER_NAMES[peer]} "
                f"means ≤ {statistics.median(r):.2f}× the replay (min over rounds {r[0]:.2f}), "
                f"against the target ≤ {replay_target(batch)}×"
            )
    if verdicts:
        lines.append("targets (median of per-round ratios): " + "; ".join(verdicts))
    return lines


class MatmulTimer:
    """Context manager that times every `np.matmul` call (2-D products as GEMM, vector products as GEMV) and every
    GEMM of the update folded into the backward pass (nncli.optim.fused's `gemm`)."""

    def __enter__(self):
        import nncli.optim.fused as fused

        self.real, self.gemm, self.gemv = np.matmul, 0.0, 0.0
        self.fused, self.real_fused = fused, fused.gemm

        def timed_fused(*args, **kwargs):
            t0 = time.perf_counter()
            fused_gemm = self.real_fused(*args, **kwargs)
            self.gemm += time.perf_counter() - t0
            return fused_gemm

        fused.gemm = timed_fused

        def timed(a, b, out=None):
            t0 = time.perf_counter()
            r = self.real(a, b, out=out)
            dt = time.perf_counter() - t0
            if a.ndim == 2 and b.ndim == 2:
                self.gemm += dt
            else:
                self.gemv += dt
            return r

        np.matmul = timed  # the engine and the replay look np.matmul up at call time
        return self

    def __exit__(self, *exc):
        np.matmul, self.fused.gemm = self.real, self.real_fused


def breakdown(args):
    """Per net and batch: nncli's epoch, the GEMM time inside it, and the replay, interleaved, medians."""
    X, y = make_data(args.samples)
    print(
        f"# numpy {np.__version__}, {os.cpu_count()} CPUs, samples {args.samples}, median of {args.repeats}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        "| net | batch | nncli epoch s | GEMM inside s | GEMV inside s | rest s | replay s | "
        "GEMM GFLOP/s inside | replay GFLOP/s |\n|---|---|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "data.npz"
        np.savez(data_path, X=X, y=y)
        for net in args.nets.split(";"):
            hidden = [int(h) for h in net.split(",")]
            for batch in (int(b) for b in args.batches.split(",")):
                contenders = {
                    "nncli": NncliContender(data_path, Path(tmp) / "run", hidden, batch),
                    "replay": GemmReplay(len(y), hidden, batch),
                }
                runs = {name: [] for name in contenders}
                for rep in range(args.repeats + 1):
                    for name, c in contenders.items():
                        with MatmulTimer() as timer:
                            t0 = time.perf_counter()
                            c.run_epoch()
                            total = time.perf_counter() - t0
                        if rep:  # the first round is the warm-up
                            runs[name].append((total, timer.gemm, timer.gemv))
                med = {name: [statistics.median(col) for col in zip(*r)] for name, r in runs.items()}
                (total, gemm, gemv), replay = med["nncli"], med["replay"][1]
                flops = flops_per_sample(hidden) * args.samples
                print(
                    f"| {'-'.join(map(str, [D, *hidden, C]))} | {batch} | {total:.3f} | {gemm:.3f} | {gemv:.3f} | "
                    f"{total - gemm - gemv:.3f} | {replay:.3f} | {flops / gemm / 1e9:.0f} | {flops / replay / 1e9:.0f} |",
                    flush=True,
                )
                del contenders


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=60_000)
    ap.add_argument("--repeats", type=int, default=5, help="timed epochs per contender (median reported)")
    ap.add_argument("--nets", default="256;512,256", help="hidden widths per net, nets separated by ';'")
    ap.add_argument("--batches", default="128,256")
    ap.add_argument(
        "--contenders",
        default="nncli,nncli-unfused,nncli-batchnorm,nncli-layernorm,jax,pytorch,sklearn,numpy-f64,nncli-f64,replay,replay-f64",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the nncli peak-memory probe")
    ap.add_argument("--breakdown", action="store_true", help="time the matrix products inside nncli's epoch instead")
    ap.add_argument("--eval", action="store_true", help="eval and predict on a memory-mapped NPY instead (first net)")
    ap.add_argument("--eval-rows", type=int, default=1_000_000, help="rows of the --eval NPY file")
    ap.add_argument("--memory-probe", help=argparse.SUPPRESS)
    ap.add_argument("--hidden", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe, [int(h) for h in args.hidden.split(",")], args.batch)
    if args.breakdown:
        return breakdown(args)
    if args.eval:
        from eval_throughput import eval_benchmark

        return eval_benchmark(args.eval_rows, [int(h) for h in args.nets.split(";")[0].split(",")], args.repeats)

    from nncli import blas

    names = args.contenders.split(",")
    print(
        f"# numpy {np.__version__}, {os.cpu_count()} CPUs, nncli BLAS updates: "
        f"{'NumPy’s OpenBLAS' if blas.HAVE_GEMM else 'numpy fallback'}; samples {args.samples}, "
        f"median of {args.repeats} interleaved epochs after 1 warm-up; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)",
        flush=True,
    )
    X, y = make_data(args.samples)
    dataset_mib = (X.nbytes + y.nbytes) / 2**20
    header = "| net | batch | contender | samples/s | × PyTorch | × replay time | epoch GFLOP/s |"
    rows, memory = [header, "|---|---|---|---|---|---|---|"], []
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "data.npz"
        np.savez(data_path, X=X, y=y)
        for net in args.nets.split(";"):
            hidden = [int(h) for h in net.split(",")]
            label = "-".join(map(str, [D, *hidden, C]))
            for batch in (int(b) for b in args.batches.split(",")):
                contenders = build_contenders(names, X, y, data_path, tmp, hidden, batch)
                med, all_times = time_interleaved(contenders, args.repeats)
                flops = flops_per_sample(hidden) * args.samples
                for name, seconds in med.items():
                    torch_x = f"{med['pytorch'] / seconds:.2f}" if "pytorch" in med else "—"
                    floor = med.get("replay-f64" if name.endswith("f64") else "replay")
                    replay_x = f"{seconds / floor:.2f}" if floor else "—"
                    rows.append(
                        f"| {label} | {batch} | {name} | {args.samples / seconds:,.0f} | {torch_x} | "
                        f"{replay_x} | {flops / seconds / 1e9:.0f} |"
                    )
                    print(rows[-1], "  epochs s:", " ".join(f"{t:.3f}" for t in all_times[name]), flush=True)
                lines = [*pair_lines(all_times, batch), f"load average now {os.getloadavg()[0]:.2f}"]
                for line in lines:
                    print(f"# {label} batch {batch}: {line}", flush=True)
                del contenders
                if not args.no_memory:
                    m = probe_memory(data_path, hidden, batch)
                    memory.append(
                        f"| {label} | {batch} | {dataset_mib:.0f} | {(m['load_peak'] - m['base']) / 2**20:.0f} | "
                        f"{(m['train_peak'] - m['base']) / 2**20:.0f} |"
                    )
                    print("# memory", memory[-1], flush=True)
    print(
        "\n## Throughput (float32 unless -f64; × replay time = epoch time / GEMM-only replay time;\n"
        "## epoch GFLOP/s = the step's matrix-product FLOPs / whole epoch time, not the speed of the GEMMs themselves)\n"
    )
    print("\n".join(rows))
    if memory:
        print("\n## nncli peak RSS growth over the process after imports, MiB\n")
        print("| net | batch | dataset | peak while loading | peak while training |\n|---|---|---|---|---|")
        print("\n".join(memory))
    print(f"\n# load at the end {os.getloadavg()[0]:.2f} (this machine's own threads included)")
    print(f"# process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
