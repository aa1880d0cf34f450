"""The data layer: built-in generators, bundled datasets, file loaders, label mapping, stratified splits, standardization."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from nncli.config import DataConfig
from nncli.data import builtin as datasets
from nncli.data import files as data_files
from nncli.data.dataset import class_ids, encode_labels, load_dataset, load_features, standardize, stratified_split
from nncli.errors import DataError, Hint, LabelsMissing

IRIS = Path(__file__).resolve().parent.parent / "data" / "iris.csv"


def cfg(source, **overrides):
    """A data config with the defaults of nncli.config.DataConfig (not validated, so a test may set any value)."""
    return DataConfig.model_construct(source=str(source), **overrides)


def write_npz(path, X, y, **keys):
    np.savez(path, **{keys.get("x_key", "X"): X, keys.get("y_key", "y"): y})
    return path


def write_idx(path, array):
    """An IDX file as MNIST writes it: magic 0 0 <type> <ndim>, big-endian uint32 sizes, big-endian data."""
    code = {np.dtype(np.uint8): 0x08, np.dtype(">f4"): 0x0D}[array.dtype]
    raw = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    with (gzip.open if str(path).endswith(".gz") else open)(path, "wb") as f:
        f.write(raw)
    return path


# built-in generators

GENERATED = [
    ("spiral", dict(classes=4, samples_per_class=50), 200, 2, 4),
    ("xor", dict(samples=120), 120, 2, 2),
    ("circles", dict(samples=101, factor=0.3), 101, 2, 2),
    ("moons", dict(samples=90), 90, 2, 2),
    ("blobs", dict(samples=60, centers=4, dimensions=5), 60, 5, 4),
]


@pytest.mark.parametrize("name, options, n, d, c", GENERATED)
def test_generator_shapes_classes_and_seeding(name, options, n, d, c):
    make = datasets.GENERATORS[name]
    X, y = make(**options, rng=np.random.default_rng(0))
    assert X.shape == (n, d) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert sorted(set(y.tolist())) == list(range(c))
    X2, y2 = make(**options, rng=np.random.default_rng(0))
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    X3, _ = make(**options, rng=np.random.default_rng(1))
    assert not np.allclose(X, X3)


def test_spiral_arms_follow_the_cs231n_formula():
    X, y = datasets.spiral(classes=3, samples_per_class=100, noise=0.0, rng=np.random.default_rng(0))
    r = np.linalg.norm(X, axis=1)
    assert np.allclose(r[y == 1], np.linspace(0, 1, 100))
    t = np.linspace(4, 8, 100)[1:]
    assert np.allclose(X[y == 1][1:], np.column_stack([r[101:200] * np.sin(t), r[101:200] * np.cos(t)]))


def test_noiseless_xor_circles_blobs_have_their_defining_geometry():
    rng = np.random.default_rng(0)
    X, y = datasets.xor(samples=200, noise=0.0, rng=rng)
    assert np.array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(int))
    X, y = datasets.circles(samples=100, noise=0.0, factor=0.4, rng=rng)
    assert np.allclose(np.linalg.norm(X, axis=1), np.where(y == 0, 1.0, 0.4))
    X, y = datasets.blobs(samples=600, centers=6, classes=2, spread=0.01, rng=rng)
    assert sorted(set(y.tolist())) == [0, 1]
    assert len(np.unique(X.round(0), axis=0)) >= 6  # two classes, each of three separate clusters


def test_generator_options_come_from_the_config_and_stray_ones_are_refused():
    ds = load_dataset(cfg("spiral", classes=5, samples_per_class=20, val_fraction=0.0), seed=0)
    assert ds.num_classes == 5 and len(ds.train) == 100 and ds.num_features == 2
    with pytest.raises(DataError, match="data.factor does not apply to data.source 'spiral'.*samples_per_class"):
        load_dataset(cfg("spiral", factor=0.3), seed=0)
    with pytest.raises(DataError, match="data.noise is a built-in generator option"):
        load_dataset(cfg(IRIS, noise=0.1), seed=0)
    with pytest.raises(DataError, match="classes .* must not exceed centers"):
        load_dataset(cfg("blobs", centers=2, classes=3), seed=0)


# bundled datasets


def test_digits_is_the_uci_set():
    X, y = datasets.digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16
    assert np.array_equal(np.unique(y), np.arange(10))
    ds = load_dataset(cfg("digits"), seed=0)
    assert ds.num_features == 64 and ds.num_classes == 10
    assert len(ds.train) + len(ds.val) == 1797


@pytest.mark.parametrize("source", [IRIS, "iris"])
def test_iris_has_150_rows_and_string_labels_mapped_back(source):
    ds = load_dataset(cfg(source, val_fraction=0.0, standardize=False), seed=0)
    assert len(ds.train) == 150 and ds.num_features == 4
    assert ds.classes == ["setosa", "versicolor", "virginica"]
    assert ds.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert np.array_equal(np.bincount(ds.train.y), [50, 50, 50])
    X, y_raw, _ = load_features(IRIS, cfg(IRIS), require_labels=True)
    ids = encode_labels(y_raw, ds.classes, source=str(IRIS))
    assert list(np.array(ds.classes)[ids]) == list(y_raw)
    setosa = X[ids == 0]
    assert setosa[:, 2].max() < X[ids != 0][:, 2].min()  # petal length separates setosa, as in Fisher's data


# labels and splits


def test_label_mapping_sorts_labels_and_round_trips():
    classes, y = class_ids(np.array(["b", "a", "c", "a"]), "t")
    assert classes == ["a", "b", "c"] and y.tolist() == [1, 0, 2, 0]
    assert encode_labels(["c", "a"], classes).tolist() == [2, 0]
    classes, y = class_ids(np.array([7.0, 3.0, 7.0]), "t")
    assert classes == [3, 7] and all(type(c) is int for c in classes)
    assert class_ids([1, "a", 2], "t")[0] == ["1", "2", "a"]  # mixed ints and strings are compared as strings
    assert encode_labels(np.array([2, 1]), ["1", "2", "a"]).tolist() == [1, 0]
    with pytest.raises(DataError, match="label 'x' is not among the training classes"):
        encode_labels(["x"], [0, 1])
    with pytest.raises(DataError, match=r"new.csv: label 'z' is not among the training classes \('a', 'b', 'c'\)"):
        encode_labels(["a", "z"], ["a", "b", "c"], source="new.csv")
    with pytest.raises(DataError, match=r"labels 'y', 'z' are not among the training classes"):
        encode_labels(["z", "y"], ["a", "b"])
    with pytest.raises(DataError, match="labels must be integers or strings, found 0.5"):
        class_ids([0.5, 1.0], "t")
    with pytest.raises(DataError, match="at least two classes"):
        class_ids([3, 3, 3], "t")


def test_stratified_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [100, 50, 20])
    train, val, test = stratified_split(y, [0, 1, 2], 0.2, 0.1, np.random.default_rng(0))
    assert np.bincount(y[val]).tolist() == [20, 10, 4]
    assert np.bincount(y[test]).tolist() == [10, 5, 2]
    assert np.bincount(y[train]).tolist() == [70, 35, 14]
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    assert not np.array_equal(train, np.sort(train))  # shuffled, not grouped by class
    again = stratified_split(y, [0, 1, 2], 0.2, 0.1, np.random.default_rng(0))
    other = stratified_split(y, [0, 1, 2], 0.2, 0.1, np.random.default_rng(1))
    assert np.array_equal(again[1], val) and not np.array_equal(np.sort(other[1]), np.sort(val))


def test_a_class_too_small_for_the_split_is_named():
    classes, y = class_ids(np.repeat(["cat", "dog"], [30, 2]), "t")
    with pytest.raises(DataError, match="pets.csv: class 'dog' has 2 sample.*at least 3"):
        stratified_split(y, classes, 0.2, 0.1, np.random.default_rng(0), "pets.csv")
    train, val, _ = stratified_split(y, classes, 0.2, 0.0, np.random.default_rng(0))
    assert np.bincount(y[train]).tolist() == [24, 1] and np.bincount(y[val]).tolist() == [6, 1]


def test_load_dataset_is_seeded_and_fills_the_configured_splits():
    config = cfg("moons", val_fraction=0.25, test_fraction=0.25)
    a, b, c = (load_dataset(config, seed=s, dtype=np.float64) for s in (3, 3, 4))
    assert np.array_equal(a.train.X, b.train.X) and np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.X, c.train.X)
    assert (len(a.train), len(a.val), len(a.test)) == (200, 100, 100)
    assert a.train.X.dtype == np.float64 and load_dataset(config, seed=3).train.X.dtype == np.float32
    assert load_dataset(config, seed=3).train.X.flags.c_contiguous
    assert load_dataset(cfg("moons", val_fraction=0.0), seed=3).val is None


def test_standardization_is_fitted_on_the_training_split_only(tmp_path):
    rng = np.random.default_rng(0)
    ids = np.arange(200.0)
    X = np.column_stack([ids, rng.normal(5.0, 3.0, 200), np.full(200, 7.0)])  # column 0 identifies the row
    write_npz(tmp_path / "d.npz", X, np.arange(200) % 2)
    ds = load_dataset(cfg(tmp_path / "d.npz", val_fraction=0.3), seed=0, dtype=np.float64)
    train_rows = np.round(ds.train.X[:, 0] * ds.std[0] + ds.mean[0]).astype(int)
    assert np.allclose(ds.mean, X[train_rows].mean(axis=0))
    assert np.allclose(ds.std[:2], X[train_rows].std(axis=0)[:2]) and ds.std[2] == 1.0  # constant feature
    assert not np.allclose(ds.mean, X.mean(axis=0))
    assert np.allclose(ds.train.X.mean(axis=0)[:2], 0) and np.allclose(ds.train.X.std(axis=0)[:2], 1)
    val_rows = np.round(ds.val.X[:, 0] * ds.std[0] + ds.mean[0]).astype(int)
    assert np.allclose(ds.val.X, standardize(X[val_rows], ds.mean, ds.std))
    off = load_dataset(cfg(tmp_path / "d.npz", standardize=False), seed=0, dtype=np.float64)
    assert off.mean is None and off.std is None and set(off.train.X[:, 2]) == {7.0}


# CSV

CSV_TEXT = """\
"height", weight,kind , note
1.5,"60",cat,"a, quoted note"

2.0,80,"dog",two
   "1.7",  70 ,cat,"line one
line two"
1.9,75,dog,x

"""


def test_csv_with_quotes_blank_lines_string_labels_and_a_features_list(tmp_path):
    path = tmp_path / "pets.csv"
    path.write_text(CSV_TEXT)
    X, y, names = load_features(path, cfg(path, target="kind", features=["weight", "height"]), require_labels=True)
    assert names == ["weight", "height"]
    assert X.tolist() == [[60, 1.5], [80, 2.0], [70, 1.7], [75, 1.9]]
    assert list(y) == ["cat", "dog", "cat", "dog"]
    ds = load_dataset(cfg(path, target="kind", features=["weight", "height"], val_fraction=0.0), seed=0)
    assert ds.classes == ["cat", "dog"] and ds.num_features == 2


def test_csv_default_target_is_the_last_column_and_integer_labels_stay_ints(tmp_path):
    path = tmp_path / "n.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},{i * i},{i % 3}\n" for i in range(30)))
    ds = load_dataset(cfg(path), seed=0)
    assert ds.classes == [0, 1, 2] and ds.feature_names == ["a", "b"]


def test_csv_without_the_label_column_is_all_features_for_predict(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n6.2,3.4,5.4,2.3\n")
    X, y, names = load_features(path, cfg(IRIS, target="species"), require_labels=False)
    assert X.shape == (2, 4) and y is None
    names4 = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    X, y, names = load_features(path, cfg(IRIS), require_labels=False, feature_names=names4)
    assert X.shape == (2, 4) and y is None and names == names4
    X, y, _ = load_features(IRIS, cfg(IRIS), require_labels=False, feature_names=names4)
    assert X.shape == (150, 4) and y[0] == "setosa"
    with pytest.raises(DataError, match="no target column 'species'; the columns are sepal_length"):
        load_features(path, cfg(IRIS, target="species"), require_labels=True)


@pytest.mark.parametrize(
    "body, options, message",
    [
        ("a,b,y\n1,2,0\n\n3,oops,1\n", {}, r"bad.csv: line 4, column 'b': 'oops' is not a number"),
        ("a,b,y\n1,2,0\n3,,1\n", {}, r"bad.csv: line 3, column 'b': is empty"),
        ('a,b,y\n1,"2\n3",0\n4,5,1\n', {}, r"bad.csv: line 2, column 'b': '2\\n3' is not a number"),  # first line
        ("a,b,y\n1,nan,0\n3,4,1\n", {}, r"bad.csv: line 2, column 'b': nan is not a finite number"),
        ("a,b,y\n1,2,0\n3,-inf,1\n", {}, r"bad.csv: line 3, column 'b': -inf is not a finite number"),
        ("a,b,y\n1,2,0\n3,4\n", {}, r"bad.csv: line 3 has 2 fields, the header has 3"),
        ("a,b,y\n1,2,0\n3,4,\n", {}, r"bad.csv: line 3, column 'y': the label is empty"),
        ("a,b,y\n1,2,0\n", {"target": "class"}, r"bad.csv: no target column 'class'; the columns are a, b, y"),
        ("a,b,y\n1,2,0\n", {"features": ["a", "c"]}, r"bad.csv: no feature column 'c'; the columns are a, b, y"),
        ("a,b,a\n1,2,0\n", {}, r"column name\(s\) 'a' appear more than once"),
        ("a,b,y\n", {}, r"bad.csv: no data rows"),
        ("0.5,1.5,0\n2.5,3.5,1\n", {}, r"bad.csv: line 1 \(0.5,1.5,0\) is numbers, not a header"),  # no header row
    ],
)
def test_bad_csv_names_file_line_and_column(tmp_path, body, options, message):
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(DataError, match=message):
        load_dataset(cfg(path, **options), seed=0)


# NPZ and NPY


def test_npz_with_custom_keys(tmp_path):
    X, y = np.arange(40.0).reshape(20, 2), np.array(["no", "yes"] * 10)
    path = write_npz(tmp_path / "d.npz", X, y, x_key="features", y_key="target")
    ds = load_dataset(cfg(path, x_key="features", y_key="target", val_fraction=0.0, standardize=False), seed=0)
    assert ds.classes == ["no", "yes"] and len(ds.train) == 20
    assert np.array_equal(np.sort(ds.train.X[:, 0]), X[:, 0])
    with pytest.raises(DataError, match=r"d.npz: no array 'X' \(data.x_key\); the archive holds features, target"):
        load_dataset(cfg(path), seed=0)


def test_npz_never_unpickles(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match="evil.npz"):
        load_dataset(cfg(path), seed=0)


def test_npz_nan_is_named_by_sample_and_feature(tmp_path):
    X = np.ones((10, 3))
    X[6, 2] = np.nan
    with pytest.raises(DataError, match=r"d.npz: sample 6 \(0-based\), feature 2 is nan"):
        load_dataset(cfg(write_npz(tmp_path / "d.npz", X, np.arange(10) % 2)), seed=0)


def test_npy_trains_from_a_memmap_without_copying(tmp_path, monkeypatch):
    monkeypatch.setattr(data_files, "CHUNK_BYTES", 1000)  # many chunks: the streamed statistics must still agree
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(500, 4)).astype(np.float32)
    y = rng.integers(0, 3, 500)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    lazy = load_dataset(cfg(tmp_path / "X.npy", labels=str(tmp_path / "y.npy"), test_fraction=0.1), seed=5)
    eager = load_dataset(cfg(write_npz(tmp_path / "d.npz", X, y), test_fraction=0.1), seed=5)
    assert isinstance(lazy.train.X, np.memmap) and lazy.train.X.filename == str(tmp_path / "X.npy")
    assert lazy.train.X.shape == (500, 4) and len(lazy.train.index) == len(lazy.train) == len(eager.train)
    assert lazy.num_features == 4 and np.array_equal(lazy.train.y, eager.train.y)
    train_rows = X[np.sort(lazy.train.index)].astype(np.float64)
    assert np.allclose(lazy.mean, train_rows.mean(axis=0)) and np.allclose(lazy.std, train_rows.std(axis=0))
    assert np.allclose(eager.mean, lazy.mean) and np.allclose(eager.std, lazy.std)
    idx = np.array([5, 0, 17])
    out = np.empty((3, 4), np.float32)
    assert lazy.train.batch(idx, out=out) is out
    assert np.allclose(out, eager.train.X[idx], atol=1e-6) and out.dtype == np.float32
    assert np.allclose(eager.train.batch(idx), eager.train.X[idx])
    chunks = list(lazy.val.chunks(size=30))
    assert np.allclose(np.concatenate([c[0] for c in chunks]), eager.val.X, atol=1e-6)
    assert np.array_equal(np.concatenate([c[1] for c in chunks]), eager.val.y)


def test_npy_problems(tmp_path):
    X = np.ones((6, 2))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y5.npy", np.arange(5))
    needs_labels = r"X.npy: npy features need a labels file, a .npy or IDX file holding one label per sample "
    with pytest.raises(LabelsMissing, match=needs_labels + r"\(data.labels in a config\)$"):  # training: the config key
        load_dataset(cfg(tmp_path / "X.npy"), seed=0)
    with pytest.raises(LabelsMissing, match=needs_labels + r"\(data.labels in a config\); pass a labels file$") as err:
        load_features(tmp_path / "X.npy", cfg(tmp_path / "X.npy"), require_labels=True)  # eval's: labels=
    assert err.value.hints == (Hint.LABELS_FILE,)
    with pytest.raises(DataError, match="X.npy: 6 samples but 5 labels in .*y5.npy"):
        load_dataset(cfg(tmp_path / "X.npy", labels=str(tmp_path / "y5.npy")), seed=0)
    X[3, 1] = np.inf
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(DataError, match=r"bad.npy: sample 3 \(0-based\), feature 1 is inf"):
        load_dataset(cfg(tmp_path / "bad.npy", labels=str(tmp_path / "y5.npy")), seed=0)


# IDX


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_images_and_labels(tmp_path, suffix):
    images = np.random.default_rng(0).integers(0, 256, size=(40, 4, 5)).astype(np.uint8)
    labels = np.arange(40, dtype=np.uint8) % 4
    x_path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    y_path = write_idx(tmp_path / f"train-labels.idx1-ubyte{suffix}", labels)
    X, y, _ = load_features(x_path, cfg(x_path, labels=str(y_path)), require_labels=True)
    assert X.shape == (40, 20)
    assert np.array_equal(X, images.reshape(40, 20)) and np.array_equal(y, labels)  # pixels as stored, as .npy
    ds = load_dataset(cfg(x_path, labels=str(y_path)), seed=0)
    assert ds.num_features == 20 and ds.classes == [0, 1, 2, 3]


def test_idx_problems(tmp_path):
    images = write_idx(tmp_path / "x.idx", np.zeros((10, 2, 2), np.uint8))
    labels = write_idx(tmp_path / "y.idx", np.zeros(9, np.uint8))
    with pytest.raises(DataError, match="x.idx: 10 samples but 9 labels in .*y.idx"):
        load_dataset(cfg(images, labels=str(labels)), seed=0)
    (tmp_path / "cut.idx").write_bytes(images.read_bytes()[:-3])
    with pytest.raises(DataError, match=r"cut.idx: IDX header promises 10x2x2 values of uint8 \(40 bytes\)"):
        load_features(tmp_path / "cut.idx", cfg(images), require_labels=False)
    (tmp_path / "junk.idx").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DataError, match="junk.idx: not an IDX file"):
        load_features(tmp_path / "junk.idx", cfg(images), require_labels=False)


# sources and explicit split files


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "d.txt").write_text("1,2\n")
    with pytest.raises(
        DataError,
        match=r"d.txt' is not a built-in dataset \(spiral, .*digits.*\) or a supported "
        r"data file \(.csv, .npz, .npy",
    ):
        load_dataset(cfg(tmp_path / "d.txt"), seed=0)
    with pytest.raises(DataError, match="data file not found: .*nowhere.csv"):
        load_dataset(cfg(tmp_path / "nowhere.csv"), seed=0)


def test_explicit_val_and_test_files_use_the_training_mapping(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("x,y,label\n" + "".join(f"{i},{-i},{'ab'[i % 2]}\n" for i in range(20)))
    val = tmp_path / "val.csv"
    val.write_text("label,y,x\nb,1,100\na,2,200\n")  # other column order: features are matched by name
    ds = load_dataset(cfg(train, target="label", val_source=str(val), test_source=str(val)), seed=0, dtype=np.float64)
    assert len(ds.train) == 20 and ds.val.y.tolist() == [1, 0] and len(ds.test) == 2
    assert np.allclose(ds.val.X, standardize([[100, 1], [200, 2]], ds.mean, ds.std))
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y,label\n1,2,c\n")
    with pytest.raises(DataError, match=r"bad.csv: label 'c' is not among the training classes \('a', 'b'\)"):
        load_dataset(cfg(train, target="label", val_source=str(bad)), seed=0)


def test_the_config_model_is_accepted():
    from nncli.config import DataConfig

    ds = load_dataset(DataConfig(source="circles", samples=50, test_fraction=0.2), seed=1)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (30, 10, 10)


def test_an_npy_test_file_with_its_own_labels_stays_memory_mapped(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 60), ("test", 20)):
        np.save(tmp_path / f"{name}-X.npy", rng.normal(size=(n, 3)))
        np.save(tmp_path / f"{name}-y.npy", np.arange(n) % 3)
    ds = load_dataset(
        cfg(
            tmp_path / "train-X.npy",
            labels=str(tmp_path / "train-y.npy"),
            test_source=str(tmp_path / "test-X.npy"),
            test_labels=str(tmp_path / "test-y.npy"),
        ),
        seed=0,
    )
    assert isinstance(ds.test.X, np.memmap) and len(ds.test) == 20 and ds.test.y.tolist() == list(np.arange(20) % 3)
    expected = (np.load(tmp_path / "test-X.npy")[:5] - ds.mean) / ds.std
    assert np.allclose(ds.test.batch(np.arange(5)), expected, atol=1e-6)


def test_a_file_that_is_not_numpy_or_holds_objects_is_named_for_what_it_is(tmp_path):
    text = tmp_path / "x.npy"
    text.write_text("hello")
    objects = tmp_path / "o.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="not a NumPy file") as raised:
        load_dataset(cfg(text, labels=str(text)), seed=0)
    assert "allow_pickle" not in str(raised.value)  # NumPy's own advice would be to unpickle it
    with pytest.raises(DataError, match=r"holds Python objects \(dtype=object\), which nncli never unpickles"):
        load_dataset(cfg(objects, labels=str(objects)), seed=0)


def test_a_header_of_numbers_is_a_header_when_the_config_names_its_columns(tmp_path):
    path = tmp_path / "pandas.csv"  # pandas writes a frame with default column names as 0,1,2
    path.write_text("0,1,2\n0.5,1.5,a\n2.5,3.5,b\n")
    X, y, names = load_features(path, cfg(path, target="2"), require_labels=True)
    assert X.tolist() == [[0.5, 1.5], [2.5, 3.5]] and list(y) == ["a", "b"] and names == ["0", "1"]
