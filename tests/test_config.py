"""The config contract: defaults, one precise line per mistake, overrides, round trips, and hostile YAML."""

import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nncli.config import Config, config_from_dict, config_to_dict, dump_config_yaml, load_config, parse_override
from nncli.config.safe_yaml import ConfigDumper
from nncli.errors import ConfigError

MINIMAL = "data: {source: spiral}\n"


@pytest.fixture
def write(tmp_path):
    """Write text (or bytes) to a config file and return its path."""

    def write(content, name="exp.yaml"):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return write


def problems_of(path, overrides=()):
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    return info.value.problems


def only_problem(path, overrides=()):
    problems = problems_of(path, overrides)
    assert len(problems) == 1, problems
    return problems[0]


def test_minimal_config_gets_every_default(write):
    config = load_config(write(MINIMAL, "spiral-small.yaml"))
    assert config.name == "spiral-small"
    assert config.output.dir == "runs/spiral-small"
    assert config.seed == 0 and config.loss == "softmax"
    assert config.model.hidden == [100] and config.model.activation == "relu" and config.model.init == "he"
    assert config.optimizer.name == "sgd" and config.optimizer.lr == 0.1
    assert config.optimizer.schedule.name == "constant"
    assert config.train.epochs == 100 and config.train.batch_size == 64 and config.train.early_stopping is None
    assert config.regularization.l2 == 0.001 and config.data.val_fraction == 0.2


def test_config_from_dict_defaults_name_to_run():
    config = config_from_dict({"data": {"source": "xor"}, "name": None})
    assert config.name == "run" and config.output.dir == "runs/run"


def test_explicit_name_sets_output_dir(write):
    config = load_config(write(MINIMAL + "name: mine\n"))
    assert config.name == "mine" and config.output.dir == "runs/mine"


def test_shipped_configs_are_valid():
    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    for path in configs:
        assert load_config(path).data.source


def test_exponent_without_dot_is_a_float(write):
    config = load_config(
        write(
            MINIMAL + "optimizer: {lr: 1e-3, eps: .5e-2}\nregularization: {l2: 1E-5}\n"
            "train: {epochs: 1e3}\nname: 2024-01-01\n"
        )
    )
    assert config.optimizer.lr == pytest.approx(1e-3) and config.optimizer.eps == pytest.approx(5e-3)
    assert config.regularization.l2 == pytest.approx(1e-5)
    assert config.train.epochs == 1000 and isinstance(config.train.epochs, int)
    assert config.name == "2024-01-01"


@pytest.mark.parametrize(
    "body, expected",
    [
        ("optimizer: {lerning_rate: 0.1}", "optimizer.lerning_rate: unknown key (did you mean 'lr'?)"),
        ("model: {activation: relux}", "model.activation: 'relux' is not one of relu, leaky_relu, sigmoid, tanh, elu"),
        ("optimizer: {lr: -0.1}", "optimizer.lr: must be > 0, got -0.1"),
        ("model: {hidden: [0]}", "model.hidden.0: must be >= 1, got 0"),
        ("train: {epochs: ten}", "train.epochs: expected an integer, got 'ten'"),
        ("train: {epochs: 3.7}", "train.epochs: expected an integer, got 3.7"),
        ("train: {shuffle: 1}", "train.shuffle: expected true or false, got 1"),
        ("optimizer: {lr: '0.1'}", "optimizer.lr: expected a number, got '0.1'"),
        ("optimizer: {lr: .nan}", "optimizer.lr: must be a finite number, got nan"),
        ("train: {batch_size: half}", "train.batch_size: expected an integer from 1 to 10000000 or 'full', got 'half'"),
        (
            "train: {early_stopping: {monitor: val_acc}}",
            "train.early_stopping.monitor: 'val_acc' is not one of val_loss, val_accuracy, val_rmse, val_mae, val_r2",
        ),
        (
            "optimizer: {schedule: {name: cosine, every: 3}}",
            "optimizer.schedule.every: unknown key for schedule 'cosine' (allowed: name, min_lr)",
        ),
        (
            "optimizer: {schedule: {name: linear}}",
            "optimizer.schedule.name: 'linear' is not one of constant, step, exponential, cosine",
        ),
        (
            "data: {source: spiral, val_fraction: 0.5, test_fraction: 0.5}",
            "data: val_fraction + test_fraction must be < 1",
        ),
        (
            "data: {source: moon}",
            "data.source: 'moon' is not a built-in dataset (spiral, xor, circles, moons, blobs, "
            "sine, attributes, digits, iris) or a data file (did you mean 'moons'?)",
        ),
        (
            "data: {source: irsi}",
            "data.source: 'irsi' is not a built-in dataset (spiral, xor, circles, moons, blobs, "
            "sine, attributes, digits, iris) or a data file (did you mean 'iris'?)",
        ),
        ("model: 5", "model: expected a mapping of keys, got 5"),
        ("model: {norm: bn}", "model.norm: 'bn' is not one of none, batchnorm, layernorm"),
        ("model: {norm_momentum: 1}", "model.norm_momentum: must be < 1, got 1"),
        (
            "model: {norm: layernorm, hidden: []}",
            "model: model.norm layernorm normalizes the hidden layers, and model.hidden is [] (a linear classifier)",
        ),
        ("zzz: 1", "zzz: unknown key (allowed: name, seed, data, model"),
    ],
)
def test_each_mistake_is_one_line_naming_key_and_allowed_values(write, body, expected):
    text = body if body.startswith("data:") else MINIMAL + body
    assert only_problem(write(text + "\n")).startswith(expected)


def test_no_suggestion_when_nothing_is_close(write):
    problem = only_problem(write(MINIMAL + "optimizer: {qqqq: 1}\n"))
    assert problem.startswith("optimizer.qqqq: unknown key") and "did you mean" not in problem


def test_missing_source_is_reported(write):
    assert only_problem(write("data: {val_fraction: 0.1}\n")) == "data.source: required key is missing"
    assert only_problem(write("seed: 1\n")).startswith("data: required key is missing")


def test_all_problems_are_reported_together(write):
    path = write("data: {source: spiral}\nmodel: {activation: relux}\noptimizer: {lr: 0, lerning_rate: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [p.split(":")[0] for p in info.value.problems] == [
        "model.activation",
        "optimizer.lr",
        "optimizer.lerning_rate",
    ]
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "is empty; a config needs at least data.source"),
        ("# only a comment\n", "is empty"),
        ("- a\n- b\n", "top level must be a mapping of keys, got a list"),
        ("data: {source: spiral\n", "invalid YAML at line 2, column 1"),
        ("a: 1\n---\nb: 2\n", "invalid YAML"),
        (b"data: {source: \xff\xfe}\n", "not UTF-8 text"),
    ],
)
def test_file_level_problems_name_the_file(write, content, expected):
    path = write(content)
    problem = only_problem(path)
    assert problem.startswith(str(path)) and expected in problem


def test_missing_file_and_directory(tmp_path):
    assert only_problem(tmp_path / "nope.yaml").endswith("nope.yaml: file not found")
    assert "is a directory" in only_problem(tmp_path)


def test_overrides_set_lists_strings_floats_and_new_nested_keys(write):
    config = load_config(
        write(MINIMAL),
        [
            "model.hidden=[64,32]",
            "train.batch_size=full",
            "optimizer.lr=1e-2",
            "train.early_stopping.patience=3",
            "optimizer.schedule={name: step}",
        ],
    )
    assert config.model.hidden == [64, 32]
    assert config.train.batch_size == "full"
    assert config.optimizer.lr == pytest.approx(0.01)
    assert config.train.early_stopping.patience == 3 and config.train.early_stopping.monitor == "val_loss"
    assert config.optimizer.schedule.name == "step" and config.optimizer.schedule.every == 10


def test_override_beats_file_and_leaves_the_raw_dict_alone(write):
    assert load_config(write(MINIMAL + "optimizer: {lr: 0.5}\n"), ["optimizer.lr=0.2"]).optimizer.lr == 0.2
    optimizer = {"lr": 0.5}
    raw = {"data": {"source": "spiral"}, "optimizer": optimizer}
    assert config_from_dict(raw, overrides=["optimizer.lr=0.2", "model.hidden=[]"]).model.hidden == []
    assert raw == {"data": {"source": "spiral"}, "optimizer": {"lr": 0.5}} and raw["optimizer"] is optimizer


def test_parse_override():
    assert parse_override("optimizer.lr=0.1") == ("optimizer.lr", 0.1)
    assert parse_override("data.source=a=b.csv") == ("data.source", "a=b.csv")
    assert parse_override("optimizer.clip_norm=") == ("optimizer.clip_norm", None)


@pytest.mark.parametrize("override", ["optimizer.lr", "=3", "a..b=1", " =1"])
def test_malformed_override_is_named(write, override):
    problem = only_problem(write(MINIMAL), [override])
    assert problem.startswith(f"override {override!r}") and "KEY=VALUE" in problem


def test_override_problems_and_validation_problems_come_together(write):
    problems = problems_of(write(MINIMAL + "loss: svm\n"), ["nonsense", "loss.margin=1", "optimizer.lr=-1"])
    assert len(problems) == 3
    assert problems[1].startswith("loss: cannot set loss.margin inside 'svm'")
    assert problems[2] == "optimizer.lr: must be > 0, got -1"


def test_unknown_override_key_is_reported_with_its_path(write):
    assert (
        only_problem(write(MINIMAL), ["optimizer.mometum=0.5"])
        == "optimizer.mometum: unknown key (did you mean 'momentum'?)"
    )


def test_dump_then_load_gives_an_equal_config(write):
    config = load_config(
        write(
            MINIMAL + "name: '1e5'\nmodel: {hidden: [64, 32], dropout: 0.5}\n"
            "optimizer: {name: adam, lr: 3e-4, schedule: {name: cosine, min_lr: 1e-6}}\n"
            "train: {batch_size: full, early_stopping: {monitor: val_accuracy}}\n"
        )
    )
    text = dump_config_yaml(config, ["nncli 0.1.0", "command: nncli train\nexp.yaml"])
    assert text.startswith("# nncli 0.1.0\n# command: nncli train\n# exp.yaml\n")
    again = load_config(write(text, "other.yaml"))
    assert again == config and again.name == "1e5"
    assert config_to_dict(again) == config_to_dict(config)


def test_config_to_dict_is_plain_and_complete():
    plain = config_to_dict(config_from_dict({"data": {"source": "spiral"}}))
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain
    assert plain["optimizer"]["schedule"] == {"name": "constant"}
    assert set(plain["data"]) >= {"source", "val_fraction", "labels", "samples"}


def test_json_schema_describes_every_key_and_accepts_resolved_configs():
    schema = Config.model_json_schema()
    for block in [schema, *schema["$defs"].values()]:
        assert all(prop.get("description") for prop in block.get("properties", {}).values())
    config = config_from_dict(
        {
            "data": {"source": "spiral"},
            "train": {"early_stopping": {}, "batch_size": "full"},
            "optimizer": {"schedule": {"name": "step"}},
        }
    )
    jsonschema.validate(config_to_dict(config), schema)


def test_python_tags_are_refused(write):
    problem = only_problem(write(MINIMAL + 'name: !!python/object/apply:os.system ["echo hi"]\n'))
    assert "!!python/object/apply:os.system is not allowed" in problem and "line 2" in problem


def test_billion_laughs_is_refused_quickly(write):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    start = time.perf_counter()
    problem = only_problem(write(MINIMAL + "\n".join(lines) + "\n"))
    assert "more than 10000 values once aliases are expanded" in problem
    assert time.perf_counter() - start < 30  # unguarded, the 3.5e9-value expansion would not finish at all


def test_long_flow_list_is_refused_quickly(write):
    start = time.perf_counter()
    assert "more than 10000 values" in only_problem(write("model: {hidden: [" + "1, " * 300_000 + "1]}\n"))
    assert time.perf_counter() - start < 30  # a generous bound: unguarded parsing took ~22 s here, and grows


def test_value_that_does_not_fit_its_tag_is_refused(write):
    assert "'abc' is not a valid !!int (line 2, column 7)" in only_problem(write(MINIMAL + "seed: !!int abc\n"))


def test_self_referencing_alias_is_refused(write):
    assert "nested deeper than 50 levels" in only_problem(write(MINIMAL + "loop: &x [*x]\n"))


def test_deep_nesting_is_refused(write):
    assert "nested deeper than 50 levels" in only_problem(write("[" * 10000 + "]" * 10000))


def test_gigantic_numbers_are_range_errors(write):
    assert only_problem(write(MINIMAL + "train: {epochs: 1e400}\n")) == "train.epochs: must be a finite number, got inf"
    assert (
        only_problem(write(MINIMAL + "train: {epochs: 99999999999999999999999}\n"))
        == "train.epochs: must be <= 1000000, got a 23-digit number"
    )
    assert "must be a finite number" in only_problem(write(MINIMAL + f"optimizer: {{lr: {'9' * 1000}}}\n"))
    assert "got a 2409-digit number" in only_problem(write(MINIMAL + f"seed: 0x{'f' * 2000}\n"))
    assert "keys must be strings" in only_problem(write(MINIMAL + f"? 0x{'f' * 2000}\n: 1\n"))


def test_oversized_file_and_value_are_refused(write):
    assert "larger than 1 MB" in only_problem(write(MINIMAL + "#" * 1_100_000 + "\n"))
    assert "longer than 2048 characters" in only_problem(write(MINIMAL + f"name: {'x' * 3000}\n"))


KEY_PATHS = [
    k.split(".")
    for k in [
        "name",
        "seed",
        "loss",
        "data.source",
        "data.val_fraction",
        "data.test_fraction",
        "data.standardize",
        "data.features",
        "data.classes",
        "data.samples",
        "data.noise",
        "data.factor",
        "model.hidden",
        "model.activation",
        "model.dropout",
        "model.init",
        "regularization.l2",
        "optimizer.name",
        "optimizer.lr",
        "optimizer.momentum",
        "optimizer.clip_norm",
        "optimizer.schedule",
        "optimizer.schedule.name",
        "optimizer.schedule.every",
        "train.epochs",
        "train.batch_size",
        "train.early_stopping",
        "train.early_stopping.patience",
        "train.dtype",
        "output.dir",
    ]
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["spiral", "full", "relu", "adam", "cosine", "step", "1e-3", "", "~"]),
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
plausible = st.one_of(
    st.integers(0, 200),
    st.floats(0, 1),
    st.lists(st.integers(1, 64), max_size=3),
    st.sampled_from(["relu", "tanh", "adam", "full", "float64", "out/x", {"name": "step"}]),
)


@st.composite
def configs(draw):
    """Mostly a valid base with some of the config's own keys set to arbitrary values; sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(documents)
    doc = {"data": {"source": "spiral"}}
    for path in draw(st.lists(st.sampled_from(KEY_PATHS), max_size=4)):
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node.get(key, {}), dict) else {}
        node[path[-1]] = draw(documents if draw(st.integers(0, 3)) == 0 else plausible)
    return doc


overrides = st.lists(
    st.builds(lambda k, v: f"{'.'.join(k)}={v}", st.sampled_from(KEY_PATHS), st.text(max_size=10))
    | st.text(max_size=12),
    max_size=2,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=configs(), extra=overrides)
def test_any_document_loads_or_raises_config_error(doc, extra):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(yaml.dump(doc, Dumper=yaml.SafeDumper, allow_unicode=True), encoding="utf-8")
        try:
            config = load_config(path, extra)
        except ConfigError as e:
            assert e.problems and all(isinstance(p, str) and p for p in e.problems)
        else:
            assert load_config(path, extra) == config
            again = Path(tmp) / "again.yaml"
            again.write_text(dump_config_yaml(config), encoding="utf-8")
            assert load_config(again) == config


def test_dumper_quotes_strings_that_would_load_as_numbers():
    assert yaml.dump("1e5", Dumper=ConfigDumper).startswith("'1e5'")


def test_a_key_written_twice_is_refused_but_a_merge_may_override(write):
    problem = only_problem(write(MINIMAL + "train: {epochs: 2}\ntrain: {epochs: 3}\n"))
    assert "key 'train' appears twice in one mapping" in problem and "line" in problem
    problem = only_problem(write("data:\n  source: spiral\n  source: xor\n"))
    assert "key 'source' appears twice" in problem and "(first on line 2)" in problem
    merged = load_config(write(MINIMAL + "optimizer: {<<: {lr: 0.1, momentum: 0.5}, lr: 0.2}\n"))
    assert (merged.optimizer.lr, merged.optimizer.momentum) == (0.2, 0.5)
    from nncli.config.safe_yaml import (
        parse_yaml,
    )  # a merge inside an aliased merge: PyYAML rewrites such nodes in place

    assert parse_yaml("b: &b {a: 1}\nn:\n  <<: &m {<<: *b, a: 5}\no: *m\n", "t")["o"] == {"a": 5}


def test_numbers_follow_yaml_1_2_not_base_60_or_octal(write):
    """YAML 1.1 (PyYAML's default) reads `epochs: 1:30` as 90 and `epochs: 010` as octal 8."""
    assert only_problem(write(MINIMAL + "train: {epochs: 1:30}\n")) == "train.epochs: expected an integer, got '1:30'"
    config = load_config(write(MINIMAL + "train: {epochs: 010}\nseed: 0o17\noptimizer: {lr: 0x1}\nname: 007x\n"))
    assert (config.train.epochs, config.seed, config.optimizer.lr, config.name) == (10, 15, 1.0, "007x")
    assert only_problem(write(MINIMAL), ["train.epochs=1:30"]) == "train.epochs: expected an integer, got '1:30'"


def test_strings_that_look_like_numbers_are_quoted_when_written_back(write):
    config = load_config(write(MINIMAL + "name: '0o17'\n"))
    assert "name: '0o17'" in dump_config_yaml(config)
    assert load_config(write(dump_config_yaml(config), "back.yaml")).name == "0o17"
