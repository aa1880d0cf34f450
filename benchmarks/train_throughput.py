"""Training throughput of nncli against PyTorch, scikit-learn, a straightforward NumPy net and the GEMM-only floor.

MNIST-shaped data (60,000 × 784 standard-normal features, 10 classes from a random linear teacher), nets
784-256-10 and 784-512-256-10, SGD with momentum 0.9, softmax cross-entropy, L2 1e-4, float32.

Contenders, timed one epoch at a time, interleaved (every contender runs one epoch before any runs its next),
after one untimed warm-up epoch each; the table reports the median epoch:

- nncli          the Trainer's real `_epoch` (what `nncli train` runs), on a Split loaded by `load_dataset`
- nncli-f64      the same in float64
- nncli-batchnorm, nncli-layernorm   the same nncli net with model.norm set (a norm after each hidden affine);
                 their epoch time over nncli's, paired round by round, is the price of the norm layers
- pytorch        nn.Sequential + CrossEntropyLoss + optim.SGD (weight decay on weights only), `loss.item()` per step
- sklearn        MLPClassifier(solver="sgd").partial_fit, one epoch per call, float32 input
- numpy-f64      a straightforward float64 NumPy net: new arrays every step
- replay         only the step's matrix products (same shapes and transposes, `out=` buffers): the floor

Peak memory is measured for nncli alone, in a child process: growth of peak RSS over the process after imports,
while loading the data and while training one epoch, against the dataset's size.

    python benchmarks/train_throughput.py                    # full run, several minutes
    python benchmarks/train_throughput.py --samples 10000 --repeats 3   # quick look
    python benchmarks/train_throughput.py --breakdown         # GEMM time inside nncli's epoch vs the replay
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
import warnings
from pathlib import Path

import numpy as np

D, C = 784, 10
LR, MOMENTUM, L2 = 0.01, 0.9, 1e-4
NORM_CONTENDERS = {"nncli-batchnorm": "batchnorm", "nncli-layernorm": "layernorm"}  # the same nncli net, norm added


def make_data(n, seed=0):
    """X (n, 784) float32 standard normal, y (n,) from a random linear teacher, so the task is learnable."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D), dtype=np.float32)
    teacher = rng.standard_normal((D, C), dtype=np.float32)
    return X, (X @ teacher).argmax(axis=1).astype(np.int64)


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
    """nncli's training loop exactly as `nncli train` runs it, minus checkpoints and logging between epochs."""

    def __init__(self, data_path, run_dir, hidden, batch, dtype="float32", norm="none"):
        from nncli.training.trainer import Trainer

        self.trainer = Trainer(nncli_config(data_path, hidden, batch, dtype, norm), run_dir, force=True)
        self.split, self.batch, self.epoch = self.trainer.data.train, batch, 0
        self.xb = np.empty((batch, self.trainer.data.num_features), self.trainer.dtype)

    def run_epoch(self):
        self.trainer._epoch(self.split, self.xb, self.batch, LR, self.epoch)
        self.epoch += 1


class TorchContender:
    def __init__(self, X, y, hidden, batch):
        import torch

        torch.manual_seed(0)
        self.torch, self.batch = torch, batch
        sizes = [D, *hidden, C]
        layers = []
        for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(fi, fo))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        self.opt = torch.optim.SGD(
            [{"params": weights, "weight_decay": L2}, {"params": biases, "weight_decay": 0.0}], lr=LR, momentum=MOMENTUM
        )
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.gen = torch.Generator().manual_seed(0)

    def run_epoch(self):
        torch, n = self.torch, len(self.y)
        order = torch.randperm(n, generator=self.gen)
        total = 0.0
        for start in range(0, n, self.batch):
            idx = order[start : start + self.batch]
            xb, yb = self.X.index_select(0, idx), self.y.index_select(0, idx)
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.item()


class SklearnContender:
    def __init__(self, X, y, hidden, batch):
        from sklearn.neural_network import MLPClassifier

        self.X, self.y, self.classes = X, y, np.arange(C)
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(hidden),
            solver="sgd",
            learning_rate_init=LR,
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            alpha=L2,
            batch_size=batch,
            shuffle=True,
            random_state=0,
        )

    def run_epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.partial_fit(self.X, self.y, classes=self.classes)


class StraightforwardNumpy:
    """The textbook float64 loop: every intermediate is a new array, one Python update per parameter."""

    def __init__(self, X, y, hidden, batch):
        rng = np.random.default_rng(0)
        self.X, self.y, self.batch, self.rng = X.astype(np.float64), y, batch, rng
        sizes = [D, *hidden, C]
        self.W = [rng.standard_normal((fi, fo)) * np.sqrt(2 / fi) for fi, fo in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(fo) for fo in sizes[1:]]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def run_epoch(self):
        n = len(self.y)
        order = self.rng.permutation(n)
        for start in range(0, n, self.batch):
            idx = order[start : start + self.batch]
            x, y = self.X[idx], self.y[idx]
            acts = [x]
            for i, (w, b) in enumerate(zip(self.W, self.b)):
                z = acts[-1] @ w + b
                acts.append(np.maximum(0, z) if i < len(self.W) - 1 else z)
            scores = acts[-1]
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            _ = -np.mean(np.log(p[np.arange(len(y)), y])) + 0.5 * L2 * sum(np.sum(w * w) for w in self.W)
            d = p
            d[np.arange(len(y)), y] -= 1
            d /= len(y)
            for i in reversed(range(len(self.W))):
                dW = acts[i].T @ d + L2 * self.W[i]
                db = d.sum(axis=0)
                if i > 0:
                    d = (d @ self.W[i].T) * (acts[i] > 0)
                self.vW[i] = MOMENTUM * self.vW[i] - LR * dW
                self.vb[i] = MOMENTUM * self.vb[i] - LR * db
                self.W[i] = self.W[i] + self.vW[i]
                self.b[i] = self.b[i] + self.vb[i]


class GemmReplay:
    """Only the matrix products of a training step: forward x·W, backward xᵀ·dout and dout·Wᵀ (not for layer 1)."""

    def __init__(self, n, hidden, batch, dtype=np.float32):
        rng = np.random.default_rng(0)
        sizes = [D, *hidden, C]
        self.n, self.batch = n, batch
        self.W = [rng.standard_normal((fi, fo)).astype(dtype) for fi, fo in zip(sizes[:-1], sizes[1:])]
        self.dW = [np.empty_like(w) for w in self.W]
        self.acts = [rng.standard_normal((batch, s)).astype(dtype) for s in sizes]
        self.douts = [rng.standard_normal((batch, s)).astype(dtype) for s in sizes]

    def run_epoch(self):
        W, dW, acts, douts, L = self.W, self.dW, self.acts, self.douts, len(self.W)
        for start in range(0, self.n, self.batch):
            rows = min(self.batch, self.n - start)
            for i in range(L):
                np.matmul(acts[i][:rows], W[i], out=acts[i + 1][:rows])
            for i in reversed(range(L)):
                np.matmul(acts[i][:rows].T, douts[i + 1][:rows], out=dW[i])
                if i > 0:
                    np.matmul(douts[i + 1][:rows], W[i].T, out=douts[i][:rows])


def flops_per_sample(hidden):
    """Multiply-adds ×2 of forward, dW and dx (no dx for the first layer) per training sample."""
    sizes = [D, *hidden, C]
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(2 * fi * fo * (2 if i == 0 else 3) for i, (fi, fo) in enumerate(pairs))


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
            elif name == "nncli-f64":
                contenders[name] = NncliContender(data_path, Path(tmp) / f"run-{name}", hidden, batch, "float64")
            elif name in NORM_CONTENDERS:
                run_dir = Path(tmp) / f"run-{name}"
                contenders[name] = NncliContender(data_path, run_dir, hidden, batch, norm=NORM_CONTENDERS[name])
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


def paired_ratios(numerators, denominators):
    """Ratios of epochs timed back to back in the same round: slow drift in machine load cancels in each pair."""
    ratios = sorted(a / b for a, b in zip(numerators, denominators))
    return f"median {statistics.median(ratios):.2f}, range {ratios[0]:.2f}–{ratios[-1]:.2f}"


class MatmulTimer:
    """Context manager that times every `np.matmul` call (2-D products as GEMM, vector products as GEMV)."""

    def __enter__(self):
        self.real, self.gemm, self.gemv = np.matmul, 0.0, 0.0

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
        np.matmul = self.real


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
        default="nncli,nncli-batchnorm,nncli-layernorm,pytorch,sklearn,numpy-f64,nncli-f64,replay,replay-f64",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the nncli peak-memory probe")
    ap.add_argument("--breakdown", action="store_true", help="time the matrix products inside nncli's epoch instead")
    ap.add_argument("--memory-probe", help=argparse.SUPPRESS)
    ap.add_argument("--hidden", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_probe:
        return memory_probe(args.memory_probe, [int(h) for h in args.hidden.split(",")], args.batch)
    if args.breakdown:
        return breakdown(args)

    from nncli import blas

    names = args.contenders.split(",")
    print(
        f"# numpy {np.__version__}, {os.cpu_count()} CPUs, nncli BLAS level-1 updates: "
        f"{'scipy' if blas._GET_BLAS else 'numpy fallback'}; samples {args.samples}, "
        f"median of {args.repeats} interleaved epochs after 1 warm-up; load {os.getloadavg()[0]:.2f}",
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
                if "nncli-f64" in med and "numpy-f64" in med:
                    print(
                        f"# {label} batch {batch}: nncli float64 is {med['numpy-f64'] / med['nncli-f64']:.2f}× "
                        f"the straightforward float64 NumPy",
                        flush=True,
                    )
                if "numpy-f64" in med and "replay-f64" in med:
                    # no trainer beats the replay, so 2× the straightforward version needs it to be ≥ 2× the replay
                    print(
                        f"# {label} batch {batch}: straightforward float64 takes {med['numpy-f64'] / med['replay-f64']:.2f}× "
                        f"the float64 GEMM replay; 2× faster than it means {med['numpy-f64'] / med['replay-f64'] / 2:.2f}× "
                        f"the replay",
                        flush=True,
                    )
                for a, b, what in (
                    ("pytorch", "nncli", "nncli speed / PyTorch speed"),
                    ("nncli", "replay", "nncli epoch / replay epoch"),
                    *((name, "nncli", f"{name} epoch / nncli epoch (no norm)") for name in NORM_CONTENDERS),
                ):
                    if a in all_times and b in all_times:
                        print(
                            f"# {label} batch {batch}: {what}, round by round: {paired_ratios(all_times[a], all_times[b])}",
                            flush=True,
                        )
                if "pytorch" in med and "replay" in med:
                    print(
                        f"# {label} batch {batch}: PyTorch takes {med['pytorch'] / med['replay']:.2f}× the replay; "
                        f"1.5× PyTorch means {med['pytorch'] / med['replay'] / 1.5:.2f}× the replay",
                        flush=True,
                    )
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
