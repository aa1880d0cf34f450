"""The CSV reader against np.loadtxt, pandas (C engine) and pyarrow.csv, on the issue's 200,000 × 20 numeric file.

The file: a header, 19 standard-normal features written with 6 decimals and an integer label (0–2), about 36 MB,
generated once into --dir (seeded, so every run reads the same bytes). Each contender reads it in its own child
process, `--repeats` times, in `--rounds` turns; the table gives the fastest read, the largest growth of peak RSS
(VmHWM, Linux) over the process after its imports ("cold": a first read, which also pages in the reading library's
code and fills its pools) and over the process's RSS after a read of a 30,000-row warm-up file ("warm": what this
file's read itself costs), and each round's time over pandas' in the same round (min, median, each), next to the
targets: 2× pandas' time, 2× the final float64 array + 64 MiB. `nncli careful` is the careful
scan alone (the reader before its fast paths); `nncli` is the reader as installed (the pyarrow engine when the `fast`
extra is installed), `nncli (NumPy path)` the reader without it; pandas and pyarrow appear when installed. Every
contender's values are checked against nncli's, bit for bit.

    python benchmarks/csv_reader.py                  # the issue's file
    python benchmarks/csv_reader.py --rows 20000     # a quick look
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 20
WARMUP_ROWS = 30_000

CHILD = """
import hashlib, json, sys, time
import numpy as np
{imports}
def status_kib(key):  # VmHWM: this process's peak RSS (ru_maxrss would inherit the parent's across exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
def read(path):
    return {read}
path, warmup, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
if repeats == 0:  # warm: every one-time cost (library code paged in, pools, threads) paid on the warm-up file first
    X = read(warmup)
    del X
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM := VmRSS
    before = status_kib("VmRSS")
    X = read(path)
    print(json.dumps({{"warm_mib": (status_kib("VmHWM") - before) / 1024}}))
    sys.exit()
before = status_kib("VmHWM")
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    X = read(path)
    best = min(best, time.perf_counter() - start)
    del X
cold = status_kib("VmHWM") - before
X = read(path)
X = np.column_stack(X) if isinstance(X, tuple) else np.ascontiguousarray(X, dtype=np.float64)
digest = hashlib.sha1(X.tobytes()).hexdigest()
print(json.dumps({{"seconds": best, "mib": cold / 1024, "digest": digest}}))
"""

NNCLI = "from nncli.data.csvfile import label_values, read_csv; "
READ = "(lambda t: (t.block, label_values(t.label)))(read_csv(path, None, None, True))"  # the fast paths' array
CONTENDERS = {  # name: (the module it needs, its imports, its read)
    "nncli": (None, NNCLI + "from nncli.data import csvarrow; csvarrow.available()", READ),  # imports pyarrow
    "nncli (NumPy path)": (None, NNCLI + "from nncli.data import csvarrow; csvarrow.parse = lambda *a: None", READ),
    "nncli careful": (  # the careful scan alone: the reader before its fast paths
        None,
        NNCLI + "from nncli.data import csvfast; csvfast.header = lambda *a: None",
        "(lambda t: (np.column_stack([c.astype(float) for c in t.cells]), label_values(t.label)))"
        "(read_csv(path, None, None, True))",
    ),
    "np.loadtxt": (None, "", "np.loadtxt(path, delimiter=',', skiprows=1, comments=None)"),
    "pandas (C)": ("pandas", "import pandas", "pandas.read_csv(path, engine='c').to_numpy(np.float64)"),
    "pyarrow.csv": (
        "pyarrow",
        "import pyarrow.csv",
        "np.column_stack([c.to_numpy() for c in pyarrow.csv.read_csv(path).columns])",
    ),
}
PEER = "pandas (C)"


def write_file(path, rows, seed=0):
    """The benchmark table: rows × 20, 19 standard-normal features (6 decimals) and an integer label."""
    rng = np.random.default_rng(seed)
    table = np.column_stack([rng.standard_normal((rows, COLUMNS - 1)), rng.integers(0, 3, rows)])
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(COLUMNS - 1)] + ["label"]) + "\n")
        np.savetxt(f, table, fmt=["%.6f"] * (COLUMNS - 1) + ["%d"], delimiter=",")


def installed(module):
    """Whether `module` imports in a child process (None: nothing needed)."""
    return (
        module is None or not subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode
    )


def measure(name, path, warmup, repeats):
    """{seconds, mib, warm_mib, digest} of one contender in a child process: its fastest of `repeats` reads, the
    peak growth over the process after its imports (cold) and over its memory after a warm-up read."""
    _, imports, read = CONTENDERS[name]
    code = CHILD.format(imports=imports, read=read)

    def child(repeats):  # a process of its own for each measure: the cold reads' freed memory is not reused
        command = [sys.executable, "-c", code, str(path), str(warmup), str(repeats)]
        out = subprocess.run(command, capture_output=True, text=True, check=True, env={"PYTHONPATH": str(ROOT)})
        return json.loads(out.stdout)

    return {**child(repeats), **child(0)}


def row(name, results, peer, target_mib, reference):
    """One table line: fastest seconds and largest peak over the rounds, the values' check, the paired ratios to
    the peer's time in the same round (min, median, each round) and the memory target's verdict."""
    seconds, mib = min(r["seconds"] for r in results), max(r["mib"] for r in results)
    warm = max(r["warm_mib"] for r in results)
    same = "identical to nncli" if all(r["digest"] == reference for r in results) else "DIFFERENT from nncli"
    ratios = "" if peer is None else [r["seconds"] / p["seconds"] for r, p in zip(results, peer)]
    if ratios:
        each = " ".join(f"{q:.2f}" for q in ratios)
        ratios = f"  × pandas: min {min(ratios):.2f} median {np.median(ratios):.2f} ({each})"
    verdict = "/".join("within" if m <= target_mib else "OVER" for m in (mib, warm))
    return f"{name:<24}{seconds:>9.3f}{mib:>10.1f}{warm:>10.1f}  {same}{ratios}  memory {verdict} target"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3, help="reads per child process; its fastest counts")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per contender, taken in turns")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "nncli-csv-bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"table-{args.rows}x{COLUMNS}.csv"
    if not path.exists():
        write_file(path, args.rows)
    warmup = args.dir / f"warmup-{WARMUP_ROWS}x{COLUMNS}.csv"  # large enough for every engine to engage
    if not warmup.exists():
        write_file(warmup, WARMUP_ROWS, seed=1)
    array_mib = args.rows * COLUMNS * 8 / 2**20
    target_mib = 2 * array_mib + 64
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {args.rows:,} × {COLUMNS}, float64 array {array_mib:.1f} MiB")
    print(
        f"target: time ≤ 2× pandas (C) (paired, per round), peak growth ≤ 2 × {array_mib:.1f} + 64 = {target_mib:.1f} MiB\n"
    )
    print(f"{'reader':<24}{'seconds':>9}{'cold MiB':>10}{'warm MiB':>10}  values")
    names = [name for name in CONTENDERS if installed(CONTENDERS[name][0])]
    results = {name: [] for name in names}
    for _ in range(args.rounds):  # in turns, so that a busy moment of the machine weighs on every contender
        for name in names:
            results[name].append(measure(name, path, warmup, args.repeats))
    reference = results["nncli"][0]["digest"]
    for name in CONTENDERS:
        if name not in results:
            print(f"{name:<24}{'not installed':>19}")
        else:
            print(row(name, results[name], results.get(PEER), target_mib, reference))


if __name__ == "__main__":
    main()
