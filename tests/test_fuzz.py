"""Fuzzing the README's hostile-input promise: whatever a file holds, a command exits 0, 1 or 2 with a message,
never a traceback.

Damaged checkpoints (bit flips, truncation, a member's NPY header rewritten, zip size and CRC fields, meta JSON)
go to eval, inspect and predict; damaged data files (CSV, NPY, NPZ, IDX, IDX .gz) to train, eval --data and
predict; damaged configs and overrides to train; damaged run directories (metrics.jsonl, summary.json,
config.yaml, checkpoints, a tampered training state) to plot --text, diff, runs and train --resume.

NNCLI_FUZZ_EXAMPLES sets the examples per test (default 40: the file runs in about 20 s; try 500 locally). The
examples are derandomized and no example database is kept, so CI draws the same ones on every run.
"""

import ast
import gzip
import importlib.util
import io
import json
import os
import shutil
import struct
import tempfile
import traceback
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nncli.cli import app

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()
# No test here takes a function-scoped fixture (each example makes its own directory), so no health check needs
# suppressing; deadline=None because one example runs up to five commands.
FUZZ = settings(
    max_examples=int(os.environ.get("NNCLI_FUZZ_EXAMPLES", "40")), derandomize=True, database=None, deadline=None
)
pytestmark = pytest.mark.timeout(600)  # a hang fails with its stack, even with a large NNCLI_FUZZ_EXAMPLES

HUGE = "5" * 5001  # more digits than int() converts by default
JSON_VALUES = st.sampled_from(
    ["null", "true", "false", "0", "-3", "1", "2.5", "-0.0", "1e308", "-1e308", "1e999", "NaN", "-Infinity", '""']
    + ['"3"', '"x"', "[]", "{}", "[1, 2]", '{"a": 1}', HUGE, "1" + "0" * 30, "[" * 100_000 + "]" * 100_000]
    + ['"\\u0000"', '"\\ud800"', json.dumps("a" * 10_000)]
) | st.integers(-5, 10).map(str)
YAML_VALUES = st.sampled_from(
    ["0", "-1", "1", "3", "010", "0x10", "0o17", "1:30", "2.5", "1e400", "-.inf", ".nan", "null", "~", "''", "yes"]
    + ["no", "[]", "{}", "[8, 8]", "x", "'3'", HUGE, "18446744073709551616", "1000000000000", "&a x", "*a"]
    + ["!!python/object/apply:os.system ['echo pwned']", "!!binary aGVsbG8=", "{a: [b, {c: d}]}", '"\\xff"']
    + ["[" * 10_000 + "]" * 10_000, "relu", "adam", "cosine", "float64", "svm", "spiral", "blobs"]
)
YAML_LINES = st.sampled_from(
    ["x: !!python/object/apply:os.system ['true']", "a: &a [*a]", "b: &b [&c [1, 1], *c, *c]", "<<: {seed: 3}"]
    + ["%YAML 1.1", "---", "...", "\t- x", "? [1, 2]\n: 3", "seed: 0", "key: value: x", "'unclosed", "{", "-"]
)
CSV_VALUES = st.sampled_from(
    ["", "nan", "inf", "-inf", "1e400", "-1.7e308", "1.7e308", "1.0", "2", "abc", '"', '"a,b"', HUGE, "0x10", " 1"]
    + ["1_0", "\x00", "é", "None", "-0", "1,2", "x0"]
)
INSERTS = st.sampled_from([b"", b"\xff\xfe", b"\x00", b"\xef\xbb\xbf", b"\r", b"\n", b",", b'"', b"\x93NUMPY", b"PK"])
BIG_BLOBS = [
    "data.source=blobs",
    "data.samples_per_class=null",
    "data.noise=null",
    "data.samples=10000000",
    "data.dimensions=10000",
]
OVERRIDES = st.just([]) | st.sampled_from(
    [[], ["train.epochs=1:30"], ["train.epochs=010"], ["model.hidden=[5000000]"], ["seed=" + HUGE], ["x"], ["=3"]]
    + [["data..x=1"], ["model.hidden=[[1]]"], ["seed=99999999999999999999"], BIG_BLOBS]
)

# Mutations are tuples, (kind, ...), so a failing example prints as what was done to the file.
flips = st.tuples(
    st.just("flip"), st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 7)), min_size=1, max_size=6)
)
truncations = st.tuples(st.just("truncate"), st.integers(0, 2**20))
splices = st.tuples(st.just("splice"), st.integers(0, 2**20), st.integers(0, 8), INSERTS)
edits = st.tuples(st.sampled_from(["replace", "delete", "add"]), JSON_VALUES)  # a JSON value at a path
paths = st.lists(st.integers(0, 50), min_size=1, max_size=6)  # each number picks a child, modulo their count


def json_edits(prefix=()):
    return st.tuples(st.just("json"), st.just(prefix), paths, edits)


def npy_headers(member):
    field = st.sampled_from  # None keeps the field as it was, "absent" leaves it out
    descr = ["'<f4'", "'<f8'", "'>f8'", "'<f2'", "'<i8'", "'|u1'", "'|b1'", "'<c16'", "'|O'", "'<U3'", "'|V8'", "3"]
    dims = ["0", "1", "2", "3", "8", "-1", "2147483648", "4294967296", "1000000000000", "9223372036854775808", HUGE]
    shape = st.lists(field(dims + ["1.5", "'2'", "None"]), max_size=3).map(lambda d: f"({', '.join(d)},)")
    raw = field(["(3, 2", "{'descr': '<f8'", "", "{}", "[", "{'descr': '<f8', 'fortran_order': False, 'shape': (3,"])
    return st.tuples(
        st.just("npy_header"),
        member,
        field([None, "absent", *descr, "[('a', '<f8')]", "'<M8[s]'", "'xyz'"]),
        field([None, "absent", "True", "'x'", "0"]),
        st.none() | field(["absent", "(3, 2", "3", "[3, 2]", "()", "(1,) * 5"]) | shape,
        st.none() | raw | st.text(max_size=30),
    )


def zip_fields(member):
    where, value = (
        st.sampled_from(["local", "central", "both"]),
        st.sampled_from(["0", "1", "-1", "+1", "2**31", "max"]),
    )
    return st.tuples(st.just("zip_field"), member, st.sampled_from(["crc", "compress_size", "file_size"]), value, where)


def zip_flips(member):
    """Bit flips in the first 128 bytes of a member (its NPY header) rather than anywhere in the file."""
    return st.tuples(st.just("member_flip"), member, flips.map(lambda f: f[1]))


ARRAYS = st.sampled_from(["W1", "b1", "W2", "b2", "norm_mean", "norm_std", "opt_m", "opt_v"])
CKPT_MEMBERS = st.just("meta") | ARRAYS
npz_mutations = (
    flips | truncations | splices | zip_flips(CKPT_MEMBERS) | npy_headers(CKPT_MEMBERS) | zip_fields(CKPT_MEMBERS)
)
npz_mutations |= st.tuples(st.just("drop"), CKPT_MEMBERS)
npz_mutations |= st.tuples(st.just("fill"), ARRAYS, st.sampled_from([0.0, -1.0, 3e38, 1e-45, np.inf, np.nan]))
meta_texts = st.tuples(st.just("meta_text"), st.integers(0, 2**16), st.integers(0, 8), JSON_VALUES)
checkpoint_mutations = npz_mutations | json_edits() | json_edits(("state",)) | meta_texts
line_mutations = st.tuples(
    st.just("line"),
    st.integers(0, 100),
    st.sampled_from(["value", "delete", "duplicate", "insert", "indent", "dedent"]),
    YAML_VALUES | YAML_LINES | JSON_VALUES,
)
yaml_mutations = line_mutations | flips | truncations | splices
jsonl_mutations = line_mutations | st.tuples(st.just("row"), st.integers(0, 100), paths, edits) | truncations
csv_mutations = (
    st.tuples(st.just("cell"), st.integers(0, 100), st.integers(0, 5), CSV_VALUES)
    | line_mutations
    | flips
    | truncations
    | splices
)
idx_fields = st.tuples(
    st.just("idx_field"),
    st.sampled_from(["magic", "type", "ndim", "dim0", "dim1", "dim2"]),
    st.sampled_from([0, 1, 2, 3, 4, 8, 13, 14, 15, 255, 2**31, 2**32 - 1, "-1", "+1"]),
)
DATA_MUTATIONS = {
    "csv": csv_mutations,
    "npy": flips | truncations | npy_headers(st.none()) | splices,
    "npz": flips | truncations | zip_flips(st.sampled_from(["X", "y"])) | npy_headers(st.sampled_from(["X", "y"])),
    "idx": idx_fields | flips | truncations | splices,
    "idx.gz": idx_fields | flips | truncations,
}
DATA_MUTATIONS["npz"] |= zip_fields(st.sampled_from(["X", "y"]))
RUN_FILES = ["metrics.jsonl", "metrics.csv", "summary.json", "config.yaml", "checkpoint.npz", "best.npz"]
run_mutations = (
    st.tuples(st.sampled_from(RUN_FILES), st.just(("delete",)) | flips | truncations)
    | st.tuples(st.just("metrics.jsonl"), jsonl_mutations)
    | st.tuples(st.just("summary.json"), json_edits())
    | st.tuples(st.sampled_from(["summary.json", "metrics.jsonl"]), st.tuples(st.just("write"), JSON_VALUES))
    | st.tuples(st.just("config.yaml"), yaml_mutations)
    | st.tuples(st.sampled_from(["checkpoint.npz", "best.npz"]), checkpoint_mutations)
    | st.just(("checkpoint.npz", ("copy_of", "best.npz")))
)


def problem(result):
    """What is wrong with how a command ended, or None: exit 0, 1 or 2 with a message is right, a traceback is not."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        return "".join(traceback.format_exception(*result.exc_info))
    if result.exit_code not in (0, 1, 2):
        return f"exit code {result.exit_code}:\n{result.output}"
    if "Traceback (most recent call last)" in result.output:
        return f"a traceback in its output:\n{result.output}"
    return None


def nncli(*args):
    """Run one command as a user would (in-process) and check how it ended."""
    result = runner.invoke(app, [str(a) for a in args])
    check(args, result)
    return result


def check(args, result):
    wrong = problem(result)
    assert wrong is None, f"nncli {' '.join(map(str, args))[:300]}: {wrong}"


def flip(data, flips, start=0, span=None):
    """`data` with bits flipped: each (offset, bit) lands at offset modulo `span` bytes from `start`."""
    data = bytearray(data)
    span = min(span or len(data), len(data) - start)
    for offset, bit in flips if data and span > 0 else ():
        data[start + offset % span] ^= 1 << bit
    return bytes(data)


def descend(node, picks):
    """The container and key that `picks` lead to: each pick chooses a child of the node, by its key (a string) or
    by number (modulo their count)."""
    parent, key = None, None
    for pick in picks:
        if not isinstance(node, (dict, list)) or not node:
            break
        if isinstance(pick, str):
            key = pick
        else:
            key = sorted(node)[pick % len(node)] if isinstance(node, dict) else pick % len(node)
        parent, node = node, node.get(key) if isinstance(node, dict) else node[key]
    return parent, key


class Raw(str):
    """JSON text written as it is (a 5001-digit number, NaN, 100,000 brackets), which json.dumps cannot produce."""


def dumps(obj):
    if isinstance(obj, Raw):
        return str(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ", ".join(map(dumps, obj)) + "]"
    return json.dumps(obj)


def edit_json(text, prefix, picks, edit):
    """`text` with the value that `prefix` then `picks` lead to replaced, deleted, or given a sibling."""
    op, value = edit
    root = json.loads(text)
    node = root
    for key in prefix:
        node = node.get(key, {}) if isinstance(node, dict) else {}
    parent, key = descend(node, picks)
    if parent is None:  # the prefix is missing (best.npz holds no training state) or the root is empty
        return text if prefix or op != "replace" else value
    if op == "replace":
        parent[key] = Raw(value)
    elif op == "delete":
        parent.pop(key, None) if isinstance(parent, dict) else parent.pop(key)
    elif isinstance(parent, dict):
        parent["unexpected"] = Raw(value)
    else:
        parent.append(Raw(value))
    return dumps(root)


def edit_line(text, pick, op, value):
    """`text` with one line edited: the line is picked by number (modulo their count) or by its key (a string)."""
    lines = text.split("\n")
    keys = [line.strip().split(":")[0] for line in lines]
    i = keys.index(pick) if isinstance(pick, str) else pick % len(lines)
    if op == "value":
        head = lines[i].split(": ", 1)[0] if ": " in lines[i] else lines[i].rstrip(":")
        lines[i] = f"{head}: {value}"
    elif op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "insert":
        lines.insert(i, value)
    else:
        lines[i] = "  " + lines[i] if op == "indent" else lines[i].lstrip()
    return "\n".join(lines)


def edit_cell(text, row, col, value):
    """A CSV text with one cell (row 0 is the header) replaced, picked by number modulo the rows and cells."""
    lines = text.split("\n")
    cells = lines[row % len(lines)].split(",")
    cells[col % len(cells)] = value
    lines[row % len(lines)] = ",".join(cells)
    return "\n".join(lines)


def edit_row(text, pick, picks, edit):
    """A JSON-lines text with one row edited as `edit_json` does."""
    lines = text.split("\n")
    i = pick % max(1, len(lines) - 1)  # the text ends in a newline: the last "line" is empty
    lines[i] = edit_json(lines[i], (), picks, edit)
    return "\n".join(lines)


def npy_parts(raw):
    """(header dict, data bytes) of an .npy file."""
    start = 10 if raw[6] == 1 else 12
    length = struct.unpack("<H" if raw[6] == 1 else "<I", raw[8:start])[0]
    return ast.literal_eval(raw[start : start + length].decode("latin1")), raw[start + length :]


def npy_header(raw, descr, fortran, shape, text):
    """`raw` with its NPY header rewritten: each field kept (None), left out ("absent") or replaced; or `text`."""
    old, body = npy_parts(raw)
    if text is None:
        fields = zip(("descr", "fortran_order", "shape"), (descr, fortran, shape))
        text = "{" + "".join(f"'{k}': {repr(old[k]) if v is None else v}, " for k, v in fields if v != "absent") + "}"
    head = text.encode("utf-8", "surrogatepass")
    version, size = (b"\x01\x00", "<H") if len(head) < 60_000 else (b"\x02\x00", "<I")
    prefix = 8 + struct.calcsize(size)
    head += b" " * (-(prefix + len(head) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + version + struct.pack(size, len(head)) + head + body


def zip_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: (z.read(i), i.compress_type) for i in z.infolist()}


def rezip(data, name, replace):
    """The archive rebuilt with member `name` passed through `replace` (bytes → bytes, or None: left out)."""
    members, out = zip_members(data), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for member, (raw, compression) in members.items():
            raw = replace(raw) if member == name else raw
            if raw is not None:
                z.writestr(member, raw, compression)
    return out.getvalue()


def member_name(data, member):
    names = list(zip_members(data))
    return f"{member}.npy" if f"{member}.npy" in names else names[0]


def central_entries(data):
    """{member name: offset of its central directory entry}."""
    end = data.rfind(b"PK\x05\x06")
    offset, entries = struct.unpack("<I", data[end + 16 : end + 20])[0], {}
    while data[offset : offset + 4] == b"PK\x01\x02":
        n, e, c = struct.unpack("<HHH", data[offset + 28 : offset + 34])
        entries[data[offset + 46 : offset + 46 + n].decode()] = offset
        offset += 46 + n + e + c
    return entries


def zip_field(data, member, field, value, where):
    name = member_name(data, member)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(name)
    real = {"crc": info.CRC, "compress_size": info.compress_size, "file_size": info.file_size}[field]
    new = {"0": 0, "1": 1, "-1": real - 1, "+1": real + 1, "2**31": 2**31, "max": 2**32 - 1}[value] % 2**32
    out = bytearray(data)
    central, local = {"crc": (16, 14), "compress_size": (20, 18), "file_size": (24, 22)}[field]
    if where != "central":
        struct.pack_into("<I", out, info.header_offset + local, new)
    if where != "local":
        struct.pack_into("<I", out, central_entries(data)[name] + central, new)
    return bytes(out)


def member_flip(data, member, flips):
    name = member_name(data, member)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        offset = z.getinfo(name).header_offset
    n, e = struct.unpack("<HH", data[offset + 26 : offset + 30])
    return flip(data, flips, offset + 30 + n + e, 128)


def meta_edit(data, change):
    """A checkpoint with its meta JSON passed through `change` (text → text)."""

    def replace(raw):
        text = str(np.load(io.BytesIO(raw), allow_pickle=False))
        buffer = io.BytesIO()
        np.save(buffer, np.array(change(text)))
        return buffer.getvalue()

    return rezip(data, "meta.npy", replace)


def idx_field(data, field, value):
    if data[:2] == b"\x1f\x8b":
        return gzip.compress(idx_field(gzip.decompress(data), field, value), mtime=0)
    out = bytearray(data)
    if field in ("magic", "type", "ndim"):
        at = {"magic": 0, "type": 2, "ndim": 3}[field]
        out[at] = (out[at] + int(value)) % 256 if isinstance(value, str) else value % 256
    else:
        at = 4 + 4 * int(field[-1])
        real = struct.unpack(">I", data[at : at + 4])[0] if len(data) >= at + 4 else 0
        struct.pack_into(">I", out, at, (real + int(value) if isinstance(value, str) else value) % 2**32)
    return bytes(out)


def text_edit(function):
    return lambda data, *args: function(data.decode("utf-8", "surrogateescape"), *args).encode(
        "utf-8", "surrogateescape"
    )


MUTATORS = {
    "flip": flip,
    "truncate": lambda data, n: data[: n % max(1, len(data))],
    "splice": lambda data, at, cut, insert: data[: at % (len(data) + 1)] + insert + data[at % (len(data) + 1) + cut :],
    "member_flip": member_flip,
    "npy_header": lambda data, member, *fields: (
        npy_header(data, *fields)
        if member is None
        else rezip(data, member_name(data, member), lambda raw: npy_header(raw, *fields))
    ),
    "zip_field": zip_field,
    "drop": lambda data, member: rezip(data, member_name(data, member), lambda raw: None),
    "fill": lambda data, member, value: rezip(
        data, member_name(data, member), lambda raw: npy_bytes(np.full_like(np.load(io.BytesIO(raw)), value))
    ),
    "json": text_edit(edit_json),
    "meta_text": lambda data, at, cut, text: meta_edit(
        data, lambda t: t[: at % len(t)] + text + t[at % len(t) + cut :]
    ),
    "line": text_edit(edit_line),
    "cell": text_edit(edit_cell),
    "row": text_edit(edit_row),
    "idx_field": idx_field,
    "delete": lambda data: None,
    "write": lambda data, text: text.encode(),
}


def mutated(data, mutation, ckpt=False):
    """`data` with one mutation applied (a JSON edit of a checkpoint goes into its meta member); None: deleted."""
    kind, *args = mutation
    if kind == "json" and ckpt:
        return meta_edit(data, lambda text: edit_json(text, *args))
    return MUTATORS[kind](data, *args)


def mutate(path, mutation, ckpt=False):
    """Apply one mutation to the file at `path`, or copy a sibling over it (("copy_of", name))."""
    if mutation[0] == "copy_of":
        if path.with_name(mutation[1]).is_file():  # not deleted by an earlier mutation
            shutil.copyfile(path.with_name(mutation[1]), path)
    elif path.is_file():
        try:
            data = mutated(path.read_bytes(), mutation, ckpt)
        except Exception:  # an earlier mutation broke what this one edits; each applies to an intact file (tested)
            return
        if data is None:
            path.unlink()
        else:
            path.write_bytes(data)


class Scratch:
    """A fresh directory for one example under the module's temporary folder, removed afterwards."""

    def __init__(self, base):
        self.base = base

    def __enter__(self):
        self.path = Path(tempfile.mkdtemp(dir=self.base))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def idx_bytes(array, code):
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def data_files(rng):
    """The seed data files (name → bytes): 60 samples, 2 features, 3 classes, in every format nncli reads."""
    y = np.repeat(np.arange(3), 20)
    X = rng.normal(size=(60, 2)) + y[:, None]
    csv = "x0,x1,label\n" + "".join(f"{a!r},{b!r},{c}\n" for (a, b), c in zip(X.tolist(), y.tolist()))
    npz = io.BytesIO()
    np.savez_compressed(npz, X=X, y=y)
    images, labels = idx_bytes(X.reshape(60, 1, 2).astype(">f4"), 0x0D), idx_bytes(y.astype("u1"), 0x08)
    return {
        "data.csv": csv.encode(),
        "X.npy": npy_bytes(X),
        "y.npy": npy_bytes(y),
        "data.npz": npz.getvalue(),
        "images.idx": images,
        "labels.idx": labels,
        "images.idx.gz": gzip.compress(images, mtime=0),
        "labels.idx.gz": gzip.compress(labels, mtime=0),
    }


# Per format: the features file and the labels file (None: the labels are inside).
FORMATS = {
    "csv": ("data.csv", None),
    "npy": ("X.npy", "y.npy"),
    "npz": ("data.npz", None),
    "idx": ("images.idx", "labels.idx"),
    "idx.gz": ("images.idx.gz", "labels.idx.gz"),
}


class Seeds:
    """The module's seed files: `run` a run directory, `files` data files by name; `base` holds the examples'."""

    def __init__(self, base, run, files):
        self.base, self.run, self.files = base, run, files

    def __repr__(self):  # a failing example prints its arguments: not 20 kB of data files
        return f"Seeds({self.run})"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """A tiny spiral run (2 epochs, 8 hidden units, Adam, so the checkpoint holds optimizer state) and data files."""
    base = tmp_path_factory.mktemp("fuzz")
    run = base / "run"
    spiral = ROOT / "configs/spiral-2layer.yaml"
    small = ["train.epochs=2", "model.hidden=[8]", "data.samples_per_class=20", "optimizer.name=adam"]
    nncli("train", spiral, *small, "optimizer.lr=0.01", "--out", run, "--quiet")
    assert {"best.npz", "checkpoint.npz", "metrics.jsonl", "summary.json", "config.yaml"} <= set(os.listdir(run))
    return Seeds(base, run, data_files(np.random.default_rng(0)))


def seed_cases(seeds):
    """(intact file, the mutations fuzzed on it, whether it is a checkpoint) for every kind of file fuzzed here."""
    cases = [((seeds.run / name).read_bytes(), checkpoint_mutations, True) for name in ("best.npz", "checkpoint.npz")]
    for fmt, names in FORMATS.items():
        cases += [(seeds.files[name], DATA_MUTATIONS[fmt], False) for name in names if name]
    cases += [((seeds.run / "metrics.jsonl").read_bytes(), jsonl_mutations, False)]
    cases += [((seeds.run / "summary.json").read_bytes(), json_edits(), False)]
    return cases + [((seeds.run / "config.yaml").read_bytes(), yaml_mutations, False)]


@settings(FUZZ, max_examples=4 * FUZZ.max_examples)
@given(st.data())
def test_every_mutation_applies_to_an_intact_file(seeds, data):
    """The fuzzer's own check: the tests skip a mutation that raises (an earlier one broke the file's structure), so
    one that raised on an intact file would silently test nothing."""
    cases = seed_cases(seeds)
    intact, mutations, ckpt = cases[data.draw(st.integers(0, len(cases) - 1), label="file")]
    result = mutated(intact, data.draw(mutations, label="mutation"), ckpt)
    assert result is None or isinstance(result, bytes)


def header(member, shape):
    """A mutation rewriting the shape in `member`'s NPY header (None: a plain .npy file)."""
    return ("npy_header", member, None, None, shape, None)


def state(key, value):
    """A mutation replacing the value of `key` in a checkpoint's training state (meta.state)."""
    return ("json", ("state",), [key], ("replace", value))


# Damage found by hand (the numbers of the hardening issue) or by this fuzzer, pinned so that every run tries it.
@FUZZ
@example("best.npz", [header("W1", "(1000000000000,)")])  # 1: a declared size allocated unchecked
@example("best.npz", [header("W1", "(3, 2")])  # 2: an unbalanced parenthesis (tokenize.TokenError)
@example("checkpoint.npz", [("json", (), ["epoch"], ("replace", HUGE))])  # 2: a 5001-digit number in meta
@given(st.sampled_from(["best.npz", "checkpoint.npz"]), st.lists(checkpoint_mutations, min_size=1, max_size=3))
def test_eval_inspect_predict_on_a_damaged_checkpoint(seeds, name, mutations):
    with Scratch(seeds.base) as d:
        ckpt = d / name
        shutil.copyfile(seeds.run / name, ckpt)
        (d / "new.csv").write_bytes(seeds.files["data.csv"])
        for mutation in mutations:
            mutate(ckpt, mutation, ckpt=True)
        nncli("eval", ckpt, "--json")
        nncli("eval", ckpt, "--data", d / "new.csv")
        nncli("inspect", ckpt)
        nncli("predict", ckpt, d / "new.csv")
        if importlib.util.find_spec("onnx") is not None:
            nncli("export", ckpt, "--out", d / "m.onnx", "--force")


@FUZZ
@example([("json", (), ["state"], ("replace", "{}"))])  # 3: a tampered training state
@example([("json", ("state",), ["optimizer"], ("delete", "null"))])
@example([state("epoch_rng", '"x"')])
@example([state("step", "-3")])
@example([state("best_value", '"x"')])
@example([("drop", "opt_m")])  # 3: an adam checkpoint without its first moments
@example([("json", ("state", "epoch_rng", "state"), ["state"], ("replace", "-1"))])  # found: OverflowError
@given(st.lists(json_edits(("state",)) | checkpoint_mutations, min_size=1, max_size=3))
def test_resume_from_a_tampered_checkpoint(seeds, mutations):
    with Scratch(seeds.base) as d:
        shutil.copytree(seeds.run, d / "run")
        for mutation in mutations:
            mutate(d / "run/checkpoint.npz", mutation, ckpt=True)
        nncli("train", "--resume", d / "run", "train.epochs=3", "--quiet")


def data_config(d, fmt):
    features, labels = FORMATS[fmt]
    lines = ["name: fuzz", "data:", f"  source: {json.dumps(str(d / features))}"]
    lines += [f"  labels: {json.dumps(str(d / labels))}"] if labels else []
    lines += ["model: {hidden: [8]}", "train: {epochs: 2}"]
    (d / "c.yaml").write_text("\n".join(lines) + "\n")
    return d / "c.yaml"


def data_cases(fmt):
    """(format, which of its files to damage: 0 features, 1 labels, mutations)."""
    files = st.integers(0, 1 if FORMATS[fmt][1] else 0)
    return st.tuples(st.just(fmt), files, st.lists(DATA_MUTATIONS[fmt], min_size=1, max_size=3))


@settings(FUZZ, max_examples=len(FORMATS) * FUZZ.max_examples)
@example(("npz", 0, [header("X", "(1000000000000, 2)")]))  # 1: declared sizes allocated unchecked
@example(("npy", 1, [header(None, "(1000000000000,)")]))
@example(("idx", 0, [*(("idx_field", f"dim{i}", n) for i, n in enumerate((2**31, 2**31, 4))), ("truncate", 16)]))
@example(("idx", 0, [("idx_field", "dim0", 0), ("truncate", 16)]))  # 2: an IDX file of 0 samples
@example(("npy", 0, [header(None, "(3, 2")]))  # 2: an unbalanced parenthesis
@example(("npz", 0, [("member_flip", "X", [(65, 0)])]))  # found: zlib.error from a damaged deflate stream
@example(("idx.gz", 1, [("flip", [(3, 1)])]))  # found: zlib.error from a damaged .gz
@given(st.sampled_from(list(FORMATS)).flatmap(data_cases))
def test_train_eval_predict_on_a_damaged_data_file(seeds, case):
    fmt, which, mutations = case
    features, labels = FORMATS[fmt]
    with Scratch(seeds.base) as d:
        for name in filter(None, (features, labels)):
            (d / name).write_bytes(seeds.files[name])
        for mutation in mutations:
            mutate(d / (features, labels)[which], mutation)
        nncli("train", data_config(d, fmt), "--out", d / "run", "--quiet")
        with_labels = ["--labels", d / labels] if labels else []
        nncli("eval", seeds.run / "best.npz", "--data", d / features, *with_labels, "--json")
        nncli("predict", seeds.run / "best.npz", d / features)


@FUZZ
@example([], BIG_BLOBS)  # 1: a generated dataset of 745 GiB
@example([("line", "epochs", "value", "1:30")], [])  # 11: YAML 1.1 sexagesimal and octal numbers
@example([("line", "epochs", "value", "010")], [])
@given(st.lists(yaml_mutations, max_size=3), OVERRIDES)
def test_train_with_a_damaged_config(seeds, mutations, overrides):
    with Scratch(seeds.base) as d:
        config = d / "config.yaml"
        shutil.copyfile(seeds.run / "config.yaml", config)
        for mutation in mutations:
            mutate(config, mutation)
        nncli("train", config, *overrides, "--out", d / "run", "--quiet")


@FUZZ
@example([("metrics.jsonl", ("line", 1, "insert", "42"))])  # 4: a metrics.jsonl line that is JSON but not a row
@example([("metrics.jsonl", ("line", 1, "insert", "[1, 2]"))])
@example([("metrics.jsonl", ("line", 1, "insert", "null"))])
@example([("metrics.jsonl", ("row", 0, ["epoch"], ("replace", '"3"')))])
@example([("summary.json", ("write", "[]"))])  # 4: a summary.json of the wrong shape
@example([("summary.json", ("json", (), ["best"], ("replace", "3")))])
@example([("metrics.jsonl", ("delete",))])  # 4: a deleted metrics.jsonl
@example([("checkpoint.npz", ("copy_of", "best.npz"))])  # 3: best.npz copied over checkpoint.npz
@example([("metrics.jsonl", ("splice", 10, 0, b"\xb0"))])  # found: UnicodeDecodeError
@example([("metrics.jsonl", ("row", 0, ["train_loss"], ("replace", "NaN")))])  # found: NaN in plot --text
@given(st.lists(run_mutations, min_size=1, max_size=3))
def test_look_at_and_resume_a_damaged_run_directory(seeds, mutations):
    with Scratch(seeds.base) as d:
        run = d / "runs/run"
        shutil.copytree(seeds.run, run)
        for name, mutation in mutations:
            mutate(run / name, mutation, ckpt=name.endswith(".npz"))
        nncli("plot", run, "--text")
        nncli("diff", run, seeds.run)
        nncli("runs", d / "runs")
        nncli("inspect", run / "checkpoint.npz")
        nncli("train", "--resume", run, "train.epochs=3", "--quiet")
