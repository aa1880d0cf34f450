"""Checkpoints round-trip exactly, survive a crash mid-write, and refuse broken or hostile files unexecuted."""

import hashlib
import io
import json
import os
import pathlib
import zipfile

import numpy as np
import pytest

from nncli import __version__
from nncli.errors import CheckpointError
from nncli.training.atomic import atomic_save_npz, atomic_write_json, atomic_write_text
from nncli.training.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint, sha256_of

SIZES = [4, 5, 3]  # D=4, one hidden layer of 5, C=3: P = 4*5 + 5 + 5*3 + 3 = 43
P = 43


def make_params(dtype=np.float64, sizes=SIZES, seed=0):
    rng = np.random.default_rng(seed)
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"W{i}"] = rng.standard_normal((fan_in, fan_out)).astype(dtype)
        params[f"b{i}"] = rng.standard_normal(fan_out).astype(dtype)
    return params


def make_meta(**changes):
    meta = {
        "format_version": FORMAT_VERSION,
        "nncli_version": __version__,
        "config": {"seed": 0},
        "classes": ["cat", "dog", "eel"],
        "layer_sizes": list(SIZES),
        "epoch": 7,
        "metrics": {"val_accuracy": 0.5},
    }
    meta.update(changes)
    return meta


def valid_arrays(**changes):
    """The arrays of a valid checkpoint (with norm and optimizer state), with some replaced or (value None) removed."""
    arrays = {
        **make_params(),
        "meta": np.array(json.dumps(make_meta())),
        "norm_mean": np.zeros(4),
        "norm_std": np.ones(4),
        "opt_v": np.zeros(P),
    }
    arrays.update(changes)
    return {name: value for name, value in arrays.items() if value is not None}


def write_raw(path, **changes):
    """Write an .npz directly with np.savez, bypassing save_checkpoint's own checks."""
    with open(path, "wb") as f:
        np.savez(f, **valid_arrays(**changes))
    return path


def assert_refused(path, *fragments):
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message
    return message


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, make_params(), make_meta(), np.zeros(4), np.ones(4), {"v": np.zeros(P)})
    return path


# Round trip


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    params = make_params(dtype)
    rng = np.random.default_rng(1)
    mean, std = rng.standard_normal(4), rng.random(4) + 0.5
    opt = {"m": rng.standard_normal(P).astype(dtype), "v": rng.random(P).astype(dtype)}
    meta = make_meta(state={"optimizer": {"t": 12}, "rng": [1, 2, 3]})
    del meta["format_version"], meta["nncli_version"]
    path = tmp_path / "run" / "best.npz"
    path.parent.mkdir()
    save_checkpoint(path, params, meta, norm_mean=mean, norm_std=std, optimizer_state=opt)

    ckpt = load_checkpoint(path)
    assert list(ckpt.params) == ["W1", "b1", "W2", "b2"]
    for name, value in params.items():
        assert ckpt.params[name].dtype == dtype
        assert ckpt.params[name].tobytes() == value.tobytes()
    assert ckpt.norm_mean.tobytes() == mean.tobytes() and ckpt.norm_std.tobytes() == std.tobytes()
    assert set(ckpt.optimizer_state) == {"m", "v"}
    for name, value in opt.items():
        assert ckpt.optimizer_state[name].dtype == dtype
        assert ckpt.optimizer_state[name].tobytes() == value.tobytes()
    assert ckpt.meta["format_version"] == FORMAT_VERSION and ckpt.meta["nncli_version"] == __version__
    assert ckpt.meta["state"] == {"optimizer": {"t": 12}, "rng": [1, 2, 3]}
    assert ckpt.layer_sizes == SIZES and ckpt.classes == ["cat", "dog", "eel"]
    assert ckpt.config == {"seed": 0} and ckpt.epoch == 7
    assert sorted(p.name for p in path.parent.iterdir()) == ["best.npz"]


def test_optional_parts_may_be_left_out(tmp_path):
    path = tmp_path / "c.npz"
    save_checkpoint(path, make_params(sizes=[2, 3]), make_meta(layer_sizes=[2, 3], classes=[0, 1, 2]))
    ckpt = load_checkpoint(path)
    assert ckpt.norm_mean is None and ckpt.norm_std is None and ckpt.optimizer_state == {}
    assert list(ckpt.params) == ["W1", "b1"] and ckpt.classes == [0, 1, 2]


def test_meta_is_stored_as_strict_json(tmp_path):
    """NaN metrics become null, numpy scalars plain numbers: the stored meta parses with any JSON reader."""
    path = tmp_path / "c.npz"
    meta = make_meta(
        classes=list(np.array([3, 1, 2])),
        epoch=np.int64(2),
        metrics={"val_loss": float("nan"), "train_loss": np.float32(0.25), "lr": float("inf")},
    )
    save_checkpoint(path, make_params(), meta)
    with np.load(path, allow_pickle=False) as npz:
        text = str(npz["meta"][()])
    stored = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert stored["metrics"] == {"val_loss": None, "train_loss": 0.25, "lr": None}
    assert stored["classes"] == [3, 1, 2] and stored["epoch"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"params": {**make_params(), "W1": np.zeros((4, 6))}},
        {"params": {**make_params(), "W3": np.zeros((3, 3))}},
        {"meta": make_meta(classes=["a", "b"])},
        {"norm_mean": np.zeros(4)},
        {"optimizer_state": {"v": np.zeros(P - 1)}},
    ],
)
def test_save_refuses_a_checkpoint_that_would_not_load(tmp_path, change):
    path = tmp_path / "c.npz"
    kwargs = {"params": make_params(), "meta": make_meta(), **change}
    with pytest.raises(ValueError, match="would not load"):
        save_checkpoint(path, **kwargs)
    assert list(tmp_path.iterdir()) == []


# Atomic writes


def crash_in_savez(file, *args, **kwargs):
    file.write(b"PK\x03\x04 half a checkpoint")
    raise KeyboardInterrupt("killed mid-write")


def crash_in_replace(src, dst):
    raise KeyboardInterrupt("killed before the rename")


@pytest.mark.parametrize("where, crash", [("numpy.savez", crash_in_savez), ("os.replace", crash_in_replace)])
def test_crash_mid_write_leaves_previous_checkpoint_intact(saved, monkeypatch, where, crash):
    before = saved.read_bytes()
    monkeypatch.setattr(where, crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(saved, make_params(seed=1), make_meta(epoch=8))
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert load_checkpoint(saved).epoch == 7
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]


def test_crash_mid_write_of_a_new_file_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr("numpy.savez", crash_in_savez)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_npz(tmp_path / "new.npz", {"x": np.zeros(3)})
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_replace_and_respect_the_umask(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "old")
    atomic_write_json(path, {"best": 1.5, "loss": float("nan"), "per_class": (np.int64(3), -float("inf"))})
    text = path.read_text(encoding="utf-8")
    assert text == '{\n  "best": 1.5,\n  "loss": null,\n  "per_class": [\n    3,\n    null\n  ]\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_save_npz(tmp_path / "a", {"x": np.arange(3)})
    with np.load(tmp_path / "a") as npz:
        assert npz["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "summary.json"]


def test_sha256_of_matches_hashlib(saved, tmp_path):
    assert sha256_of(saved) == hashlib.sha256(saved.read_bytes()).hexdigest()
    with pytest.raises(CheckpointError, match="cannot be read"):
        sha256_of(tmp_path / "absent.npz")


# Files that are not checkpoints at all


def test_missing_file(tmp_path):
    assert_refused(tmp_path / "absent.npz", "no such file")


def test_directory(tmp_path):
    assert_refused(tmp_path, "is a directory")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    assert_refused(path, "is empty")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_refused(path, "not an .npz checkpoint")


def test_text_file(tmp_path):
    path = tmp_path / "config.npz"
    path.write_text("model:\n  hidden: [64]\n", encoding="utf-8")
    assert_refused(path, "not an .npz checkpoint")


def test_single_npy_array(tmp_path):
    path = tmp_path / "W1.npy"
    np.save(path, np.zeros((4, 5)))
    assert_refused(path, "single .npy array")


@pytest.mark.parametrize("keep", [0.02, 0.3, 0.5, 0.9, 0.99, -1])
def test_truncated_copy(saved, tmp_path, keep):
    data = saved.read_bytes()
    cut = len(data) - 1 if keep == -1 else max(4, int(len(data) * keep))
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[:cut])
    assert_refused(path, "truncated or corrupt")


def test_corrupted_bytes_inside_an_array(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("W1.npy")
    # Local header (30 bytes + name + extra) then the stored .npy; flip a byte in its data, past the .npy header.
    at = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[at] ^= 0xFF
    path = tmp_path / "corrupt.npz"
    path.write_bytes(bytes(data))
    assert_refused(path, "truncated or corrupt")


# Hostile archives


class TouchOnUnpickle:
    """Unpickling this runs Path(marker).touch(): proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_crafted_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    np.lib.format.write_array(payload, np.array([TouchOnUnpickle(marker)], dtype=object), allow_pickle=True)
    path = tmp_path / "hostile.npz"
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in valid_arrays(W1=None).items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, value, allow_pickle=False)
            zf.writestr(f"{name}.npy", buf.getvalue())
        zf.writestr("W1.npy", payload.getvalue())

    assert_refused(path, "'W1'", "pickled object array", "refusing to load")
    assert not marker.exists()
    with np.load(path, allow_pickle=True) as npz:  # the payload is live: unpickling it does run code
        npz["W1"]
    assert marker.exists()


def test_member_that_is_not_an_npy_array(tmp_path):
    path = write_raw(tmp_path / "c.npz")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", b"hello")
    assert_refused(path, "'notes.txt'", "not a .npy array")


def test_missing_meta(tmp_path):
    assert_refused(write_raw(tmp_path / "c.npz", meta=None), "no 'meta' array")


@pytest.mark.parametrize(
    "meta, fragment",
    [
        (np.array("{not json"), "not valid JSON"),
        (np.array("[" * 100_000 + "]" * 100_000), "not valid JSON"),
        (np.array(json.dumps([1, 2])), "must hold a JSON object"),
        (np.array(1.0), "0-d unicode string"),
        (np.array([json.dumps(make_meta())]), "0-d unicode string"),
    ],
)
def test_meta_not_a_json_object(tmp_path, meta, fragment):
    assert_refused(write_raw(tmp_path / "c.npz", meta=meta), fragment)


def with_meta(tmp_path, meta):
    return write_raw(tmp_path / "c.npz", meta=np.array(json.dumps(meta)))


@pytest.mark.parametrize(
    "key", ["format_version", "nncli_version", "config", "classes", "layer_sizes", "epoch", "metrics"]
)
def test_meta_missing_key(tmp_path, key):
    meta = make_meta()
    del meta[key]
    assert_refused(with_meta(tmp_path, meta), "missing", repr(key))


def test_newer_format_version(tmp_path):
    assert_refused(
        with_meta(tmp_path, make_meta(format_version=FORMAT_VERSION + 1)),
        f"written by a newer nncli (format {FORMAT_VERSION + 1}, this is {FORMAT_VERSION}); upgrade nncli",
    )


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_invalid_format_version(tmp_path, version):
    assert_refused(with_meta(tmp_path, make_meta(format_version=version)), "meta.format_version")


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("layer_sizes", "4,5,3", "meta.layer_sizes must be of type list"),
        ("layer_sizes", [4, 0, 3], "positive integers"),
        ("layer_sizes", [4, 2.5, 3], "positive integers"),
        ("layer_sizes", [4, True, 3], "positive integers"),
        ("layer_sizes", [3], "at least two"),
        ("classes", "cat,dog,eel", "meta.classes must be of type list"),
        ("classes", ["cat", None, "eel"], "strings or numbers"),
        ("classes", ["cat", ["dog"], "eel"], "strings or numbers"),
        ("classes", ["cat", "cat", "eel"], "duplicate"),
        ("classes", ["cat", "dog"], "2 labels but layer_sizes ends in 3"),
        ("epoch", -1, "meta.epoch must be >= 0"),
        ("epoch", True, "meta.epoch must be of type int"),
        ("epoch", 1.5, "meta.epoch must be of type int"),
        ("config", [], "meta.config must be of type dict"),
        ("metrics", None, "meta.metrics must be of type dict"),
        ("nncli_version", 1, "meta.nncli_version must be of type str"),
        ("state", [1, 2], "meta.state must be a dict"),
    ],
)
def test_meta_wrong_type_or_value(tmp_path, key, value, fragment):
    assert_refused(with_meta(tmp_path, make_meta(**{key: value})), fragment)


# Arrays that do not match the meta


def test_unknown_array(tmp_path):
    assert_refused(write_raw(tmp_path / "c.npz", extra=np.zeros(3)), "unknown array 'extra'")


def test_more_layers_than_layer_sizes(tmp_path):
    assert_refused(write_raw(tmp_path / "c.npz", W3=np.zeros((3, 2)), b3=np.zeros(2)), "unknown array 'W3'", "2 layers")


def test_missing_layer(tmp_path):
    assert_refused(write_raw(tmp_path / "c.npz", b2=None), "missing array 'b2'")


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("W1", np.zeros((5, 4)), "has shape (5, 4), layer_sizes [4, 5, 3] requires (4, 5)"),
        ("b2", np.zeros((1, 3)), "has shape (1, 3)"),
        ("W2", np.zeros((5, 3), dtype=np.int64), "float32 or float64, got int64"),
        ("b1", np.zeros(5, dtype=np.float16), "float32 or float64, got float16"),
        ("norm_std", np.ones(5), "'norm_std' has shape (5,)"),
        ("opt_v", np.zeros(P - 1), f"one value per parameter ({P}) requires ({P},)"),
        ("opt_m", np.zeros((P, 1)), f"has shape ({P}, 1)"),
        ("opt_t", np.zeros(P, dtype=np.int32), "float32 or float64"),
        ("W1", np.full((4, 5), np.nan), "holds 20 NaN or infinite value(s)"),
        ("norm_std", np.array([1.0, np.inf, 1.0, 1.0]), "holds 1 NaN or infinite value(s)"),
    ],
)
def test_array_does_not_match(tmp_path, name, value, fragment):
    assert_refused(write_raw(tmp_path / "c.npz", **{name: value}), f"'{name}'", fragment)


@pytest.mark.parametrize("missing", ["norm_mean", "norm_std"])
def test_norm_arrays_come_in_pairs(tmp_path, missing):
    assert_refused(write_raw(tmp_path / "c.npz", **{missing: None}), "both or neither")


@pytest.mark.parametrize(
    "source, standardized, expect",
    [
        ("data/mnist/train-images-idx3-ubyte.gz", True, "norm × 255"),
        ("images.idx", False, "W1 / 255"),
        ("points.csv", True, "unchanged"),
    ],
)
def test_a_format_1_checkpoint_trained_on_idx_takes_raw_pixels(tmp_path, source, standardized, expect):
    """Format 1 read IDX pixels as value/255; loaded today, the same model must take pixels as stored."""
    meta = make_meta(format_version=1, config={"seed": 0, "data": {"source": source}})
    mean, std = np.full(4, 0.5), np.full(4, 0.25)
    path = write_raw(
        tmp_path / "old.npz",
        meta=np.array(json.dumps(meta)),
        norm_mean=mean if standardized else None,
        norm_std=std if standardized else None,
    )
    ckpt, params = load_checkpoint(path), make_params()
    x_raw = np.array([0.0, 51.0, 128.0, 255.0])
    first = (lambda x: (x - ckpt.norm_mean) / ckpt.norm_std) if standardized else (lambda x: x)
    if expect == "unchanged":
        assert np.array_equal(ckpt.norm_mean, mean) and np.array_equal(ckpt.params["W1"], params["W1"])
        return
    old = ((x_raw / 255 - mean) / std if standardized else x_raw / 255) @ params["W1"]  # what format 1 computed
    np.testing.assert_allclose(first(x_raw) @ ckpt.params["W1"], old, rtol=1e-12)


# Normalization layers (format 4) and checkpoints of format 3


def trained_run(root, norm):
    """A tiny spiral run with `norm`, trained through the CLI; its run directory."""
    from typer.testing import CliRunner

    from nncli.cli import app

    run_dir = root / norm
    args = ["train", str(pathlib.Path(__file__).parent.parent / "configs/spiral-2layer.yaml"), f"model.norm={norm}"]
    args += ["model.hidden=[8,6]", "data.samples_per_class=20", "train.epochs=2", "--out", str(run_dir), "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="module")
def norm_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("norm-runs")
    return {norm: trained_run(root, norm) for norm in ("none", "batchnorm")}


def raw_arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {name: f[name] for name in f.files}


def rewrite(path, arrays, **changes):
    """`arrays` with some replaced or (value None) removed, written raw to `path` (bypassing save's checks)."""
    arrays = {**arrays, **changes}
    with open(path, "wb") as f:
        np.savez(f, **{name: value for name, value in arrays.items() if value is not None})
    return path


def eval_json(path):
    from typer.testing import CliRunner

    from nncli.cli import app

    result = CliRunner().invoke(app, ["eval", str(path), "--json"])
    return result.exit_code, result.output


def test_a_batchnorm_checkpoint_round_trips_its_norm_arrays(norm_runs):
    ckpt = load_checkpoint(norm_runs["batchnorm"] / "best.npz")
    assert ckpt.meta["format_version"] == FORMAT_VERSION == 4
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(ckpt.params)
    assert set(ckpt.running) == {"running_mean1", "running_var1", "running_mean2", "running_var2"}
    assert ckpt.running["running_var1"].shape == (8,) and (ckpt.running["running_var1"] > 0).all()


def test_a_format_3_checkpoint_still_loads_and_evaluates(norm_runs, tmp_path):
    """Format 3, as nncli wrote it before norms: no gamma/beta/running arrays, no model.norm keys in its config."""
    path = norm_runs["none"] / "best.npz"
    arrays = raw_arrays(path)
    meta = json.loads(str(arrays["meta"][()]))
    meta["format_version"] = 3
    for key in ("norm", "norm_momentum", "norm_eps"):
        del meta["config"]["model"][key]
    old = rewrite(tmp_path / "format3.npz", arrays, meta=np.array(json.dumps(meta)))
    ckpt = load_checkpoint(old)
    assert (
        ckpt.meta["format_version"] == 3
        and ckpt.running == {}
        and set(ckpt.params)
        == set(arrays)
        - {
            "meta",
            "norm_mean",
            "norm_std",
            *(name for name in arrays if name.startswith("opt_")),
        }
    )
    (code, output), (want_code, want) = eval_json(old), eval_json(path)
    assert code == want_code == 0, output
    assert json.loads(output)["accuracy"] == json.loads(want)["accuracy"]
    assert json.loads(output)["loss"] == json.loads(want)["loss"]


def with_model(arrays, **model):
    meta = json.loads(str(arrays["meta"][()]))
    meta["config"]["model"].update(model)
    return np.array(json.dumps(meta))


@pytest.mark.parametrize(
    "change,fragments",
    [
        (
            {"running_var2": None},
            ["missing array 'running_var2'", "model.norm batchnorm", "running_var1..running_var2"],
        ),
        ({"running_var1": -np.ones(8)}, ["'running_var1'", "negative"]),
        ({"running_mean1": np.zeros(7)}, ["'running_mean1'", "shape (7,)", "(8,)"]),
        ({"running_var1": np.full(8, np.nan)}, ["'running_var1'", "NaN"]),
        ({"gamma1": None}, ["missing array 'gamma1'", "gamma1..gamma2"]),
        ({"beta2": np.zeros((6, 1))}, ["'beta2'", "shape (6, 1)"]),
        ("groupnorm", ["meta.config.model.norm", "'groupnorm'", "none, batchnorm, layernorm"]),
        ("layernorm", ["unknown array 'running_mean1'", "model.norm layernorm"]),
        ("none", ["unknown array 'gamma1'"]),
    ],
)
def test_a_damaged_batchnorm_checkpoint_is_refused_naming_the_array(norm_runs, tmp_path, change, fragments):
    """Each refused by load_checkpoint and by `nncli eval` (exit 2, no traceback), the array or key named."""
    arrays = raw_arrays(norm_runs["batchnorm"] / "best.npz")
    if isinstance(change, str):  # the norm named in meta.config differs from the arrays stored
        change = {"meta": with_model(arrays, norm=change)}
    path = rewrite(tmp_path / "damaged.npz", arrays, **change)
    assert_refused(path, *fragments)
    code, output = eval_json(path)
    assert code == 2 and "Traceback" not in output
    for fragment in fragments:
        assert fragment in output.replace("\n", " ")
