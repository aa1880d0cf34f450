"""The CSV reader against np.loadtxt, pandas (C engine) and pyarrow.csv, on the issue's 200,000 × 20 numeric file.

The file: a header, 19 standard-normal features written with 6 decimals and an integer label (0–2), about 36 MB,
generated once into --dir (seeded, so every run reads the same bytes). Each contender reads it in its own child
process, `--repeats` times; the table gives the fastest read and the growth of peak RSS (VmHWM, Linux) over the
process after its imports, next to the target: 2× the final float64 array + 64 MiB. `nncli careful` is the careful
scan alone (the reader before its fast path); pandas and pyarrow appear when installed. Every contender's values
are checked against nncli's, bit for bit.

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

CHILD = """
import hashlib, json, sys, time
import numpy as np
{imports}
def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would inherit the parent's across exec)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
path, repeats = sys.argv[1], int(sys.argv[2])
before = peak_kib()
best = float("inf")
for _ in range(repeats):
    start = time.perf_counter()
    X = {read}
    best = min(best, time.perf_counter() - start)
    del X
grown = peak_kib() - before
X = {read}
X = np.column_stack(X) if isinstance(X, tuple) else np.ascontiguousarray(X, dtype=np.float64)
print(json.dumps({{"seconds": best, "mib": grown / 1024, "digest": hashlib.sha1(X.tobytes()).hexdigest()}}))
"""

CONTENDERS = {
    "nncli": ("from nncli.data.csvfile import read_csv", "read_csv(path, None, None, True)[:2]"),
    "nncli careful": (  # the careful scan alone: the reader before the fast path
        "from nncli.data import csvfast; from nncli.data.csvfile import read_csv; csvfast.header = lambda *a: None",
        "read_csv(path, None, None, True)[:2]",
    ),
    "np.loadtxt": ("", "np.loadtxt(path, delimiter=',', skiprows=1, comments=None)"),
    "pandas (C)": ("import pandas", "pandas.read_csv(path, engine='c').to_numpy(np.float64)"),
    "pyarrow.csv": (
        "import pyarrow.csv",
        "np.column_stack([c.to_numpy() for c in pyarrow.csv.read_csv(path).columns])",
    ),
}


def write_file(path, rows, seed=0):
    """The benchmark table: rows × 20, 19 standard-normal features (6 decimals) and an integer label."""
    rng = np.random.default_rng(seed)
    table = np.column_stack([rng.standard_normal((rows, COLUMNS - 1)), rng.integers(0, 3, rows)])
    with open(path, "w") as f:
        f.write(",".join([f"x{i}" for i in range(COLUMNS - 1)] + ["label"]) + "\n")
        np.savetxt(f, table, fmt=["%.6f"] * (COLUMNS - 1) + ["%d"], delimiter=",")


def measure(name, path, repeats):
    """{seconds, mib, digest} of one contender in a child process, or None when its library is not installed."""
    imports, read = CONTENDERS[name]
    if imports.startswith("import "):
        module = imports.split()[1].split(".")[0]
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if probe.returncode:
            return None
    code = CHILD.format(imports=imports, read=read)
    out = subprocess.run(
        [sys.executable, "-c", code, str(path), str(repeats)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "nncli-csv-bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    path = args.dir / f"table-{args.rows}x{COLUMNS}.csv"
    if not path.exists():
        write_file(path, args.rows)
    array_mib = args.rows * COLUMNS * 8 / 2**20
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB, {args.rows:,} × {COLUMNS}, float64 array {array_mib:.1f} MiB")
    print(f"target: time ≤ 2× pandas (C), peak growth ≤ 2 × {array_mib:.1f} + 64 = {2 * array_mib + 64:.1f} MiB\n")
    print(f"{'reader':<14}{'seconds':>9}{'peak MiB':>10}  values")
    reference = None
    for name in CONTENDERS:
        result = measure(name, path, args.repeats)
        if result is None:
            print(f"{name:<14}{'not installed':>19}")
            continue
        reference = reference or result["digest"]
        same = "identical to nncli" if result["digest"] == reference else "DIFFERENT from nncli"
        print(f"{name:<14}{result['seconds']:>9.3f}{result['mib']:>10.1f}  {same}")


if __name__ == "__main__":
    main()
