"""The run config: a YAML file validated into a `Config`, the contract between the CLI, the data and the trainer.

Every key has a default except `data.source`. `load_config` reports every problem at once, one `dotted.path: message`
line each, in a single ConfigError. Numbers are strict: a quoted "0.1" is a string, not a number, and a bool is not
a number; an integer key accepts a whole float such as 1e3 but refuses 3.7. The YAML itself is read by safe_yaml.py
(plain values only, size and depth limits, unquoted 1e-3 is a number).
"""

import difflib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from nncli.config.safe_yaml import ConfigDumper, parse_yaml, read_yaml_file
from nncli.data.builtin import BUILTINS as BUILTIN_DATASETS
from nncli.errors import ConfigError, show_value

MAX_EPOCHS = 1_000_000
MAX_SAMPLES = 10_000_000
MAX_WIDTH = 100_000


def _invalid(message):
    """A validation error whose text is exactly `message` (safe for values containing braces)."""
    return PydanticCustomError("nncli", "{message}", {"message": message})


def _whole(value):
    """Let an integer key take a whole float (1e3 -> 1000); refuse inf/nan here so they read as range errors."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(f"must be a finite number, got {show_value(value)}")
        if value.is_integer():
            return int(value)
    return value


def _batch_size(value):
    """A positive integer, or "full" for full-batch gradient descent."""
    value = _whole(value)
    if value == "full" or (type(value) is int and 1 <= value <= MAX_SAMPLES):
        return value
    raise _invalid(f"expected an integer from 1 to {MAX_SAMPLES} or 'full', got {show_value(value)}")


def _path_text(value):
    """A file path: non-empty and free of NUL bytes (which no file system accepts)."""
    if isinstance(value, str) and (not value or "\0" in value):
        raise _invalid(f"expected a file path, got {show_value(value)}")
    return value


Integer = Annotated[int, BeforeValidator(_whole)]
Number = Annotated[float, Field(allow_inf_nan=False)]
PathText = Annotated[str, BeforeValidator(_path_text)]
Fraction = Annotated[Number, Field(ge=0, lt=1)]
BatchSize = Annotated[Union[Annotated[int, Field(ge=1, le=MAX_SAMPLES)], Literal["full"]], BeforeValidator(_batch_size)]


class Section(BaseModel):
    """A block of the config: unknown keys and loose types are errors, never silently ignored or coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DataConfig(Section):
    """Where the samples come from: a built-in generator or a file, and how they are split."""

    source: PathText = Field(
        description=f"Built-in dataset ({', '.join(BUILTIN_DATASETS)}) or a .csv/.npz/.npy/.idx/.gz file."
    )
    val_fraction: Fraction = Field(0.2, description="Fraction of the samples held out for validation.")
    test_fraction: Fraction = Field(0.0, description="Fraction of the samples held out for testing.")
    standardize: bool = Field(True, description="Shift and scale features by the training split's mean and std.")
    target: str | None = Field(None, description="CSV label column (default: the last column).")
    features: list[str] | None = Field(None, description="CSV feature columns (default: every other column).")
    x_key: str = Field("X", description="Name of the feature array in an .npz file.")
    y_key: str = Field("y", description="Name of the label array in an .npz file.")
    labels: PathText | None = Field(None, description="Labels file for .npy features or IDX images.")
    val_source: PathText | None = Field(None, description="Validation split from its own file instead of a fraction.")
    test_source: PathText | None = Field(None, description="Test split from its own file instead of a fraction.")
    val_labels: PathText | None = Field(None, description="Labels file for a .npy or IDX val_source.")
    test_labels: PathText | None = Field(None, description="Labels file for a .npy or IDX test_source.")
    classes: Integer | None = Field(
        None, ge=2, le=1000, description="Built-in generators: number of classes (spiral and blobs default to 3)."
    )
    samples_per_class: Integer | None = Field(
        None, ge=1, le=MAX_SAMPLES, description="spiral: points per class (default 100)."
    )
    samples: Integer | None = Field(None, ge=4, le=MAX_SAMPLES, description="xor, circles, moons, blobs: total points.")
    noise: Number | None = Field(None, ge=0, description="Built-in generators: std of the added Gaussian noise.")
    centers: Integer | None = Field(None, ge=2, le=1000, description="blobs: number of cluster centres.")
    spread: Number | None = Field(None, gt=0, description="blobs: std of each cluster.")
    dimensions: Integer | None = Field(None, ge=1, le=10_000, description="blobs: number of features.")
    factor: Number | None = Field(None, gt=0, lt=1, description="circles: inner radius / outer radius.")

    @field_validator("source")
    @classmethod
    def _no_misspelt_builtin(cls, source):
        """A bare name close to a built-in is a typo, not a file: say so instead of 'file not found' later."""
        if source in BUILTIN_DATASETS or "." in source or "/" in source or "\\" in source:
            return source
        close = difflib.get_close_matches(source.lower(), BUILTIN_DATASETS, n=1)
        if close:
            raise _invalid(
                f"{show_value(source)} is not a built-in dataset ({', '.join(BUILTIN_DATASETS)}) "
                f"or a data file (did you mean '{close[0]}'?)"
            )
        return source

    @model_validator(mode="after")
    def _splits_leave_training_data(self):
        if self.val_fraction + self.test_fraction >= 1:
            raise _invalid(
                f"val_fraction + test_fraction must be < 1 so samples remain for training, "
                f"got {self.val_fraction} + {self.test_fraction}"
            )
        return self


class ModelConfig(Section):
    """The fully connected network: affine layers with a nonlinearity between them."""

    hidden: list[Annotated[Integer, Field(ge=1, le=MAX_WIDTH)]] = Field(
        [100], description="Hidden layer widths: [] linear classifier, [h] two-layer net, [h1, h2] three-layer net."
    )
    activation: Literal["relu", "leaky_relu", "sigmoid", "tanh", "elu"] = Field(
        "relu", description="Nonlinearity after each hidden affine layer."
    )
    negative_slope: Number = Field(0.01, gt=0, description="leaky_relu: slope for negative inputs.")
    alpha: Number = Field(1.0, gt=0, description="elu: alpha·(exp(x) − 1) for negative inputs.")
    init: Literal["he", "xavier", "normal"] = Field(
        "he", description="Weight init: he N(0, 2/fan_in), xavier N(0, 2/(fan_in+fan_out)), normal N(0, init_std²)."
    )
    init_std: Number = Field(0.01, gt=0, description="init: normal: std of the initial weights.")
    bias_init: Number = Field(
        0.0,
        description="Initial value of the hidden layers' biases: 0, or a small positive "
        "value such as 0.01 so that every ReLU fires at first.",
    )
    dropout: Fraction = Field(0.0, description="Probability of dropping a hidden unit in training (inverted dropout).")


class RegularizationConfig(Section):
    """Weight penalties added to the data loss (weights only, not biases)."""

    l2: Number = Field(0.001, ge=0, description="L2 strength: loss += 0.5·l2·Σ W².")
    l1: Number = Field(0.0, ge=0, description="L1 strength: loss += l1·Σ |W|.")


class ConstantSchedule(Section):
    """A fixed learning rate."""

    name: Literal["constant"] = Field(description="The learning rate stays lr.")


class StepSchedule(Section):
    """Multiply the rate by gamma every `every` epochs."""

    name: Literal["step"] = Field(description="lr·gamma^⌊epoch/every⌋.")
    every: Integer = Field(10, ge=1, le=MAX_EPOCHS, description="Epochs between decays.")
    gamma: Number = Field(0.5, gt=0, le=1, description="Factor applied every `every` epochs.")


class ExponentialSchedule(Section):
    """Multiply the rate by gamma every epoch."""

    name: Literal["exponential"] = Field(description="lr·gamma^epoch.")
    gamma: Number = Field(0.95, gt=0, le=1, description="Factor applied every epoch.")


class CosineSchedule(Section):
    """Anneal the rate along half a cosine."""

    name: Literal["cosine"] = Field(description="Half a cosine from lr down to min_lr over the run.")
    min_lr: Number = Field(
        0.0, ge=0, description="The rate the anneal reaches at the end of the run (the last epoch runs just above it)."
    )


SCHEDULES = {
    "constant": ConstantSchedule,
    "step": StepSchedule,
    "exponential": ExponentialSchedule,
    "cosine": CosineSchedule,
}
Schedule = Annotated[
    Union[ConstantSchedule, StepSchedule, ExponentialSchedule, CosineSchedule], Field(discriminator="name")
]


class OptimizerConfig(Section):
    """The update rule, its hyperparameters and the learning-rate schedule."""

    name: Literal["sgd", "momentum", "nesterov", "rmsprop", "adam"] = Field("sgd", description="Update rule.")
    lr: Number = Field(0.1, gt=0, description="Learning rate (the schedule's starting value).")
    momentum: Number = Field(0.9, ge=0, lt=1, description="momentum, nesterov: velocity decay μ.")
    decay_rate: Number = Field(0.99, gt=0, lt=1, description="rmsprop: decay of the squared-gradient cache.")
    beta1: Number = Field(0.9, ge=0, lt=1, description="adam: decay of the first-moment estimate.")
    beta2: Number = Field(0.999, ge=0, lt=1, description="adam: decay of the second-moment estimate.")
    eps: Number = Field(1e-8, gt=0, description="rmsprop, adam: added to the denominator.")
    clip_norm: Number | None = Field(None, gt=0, description="Rescale gradients whose global L2 norm exceeds this.")
    schedule: Schedule = Field(
        default_factory=lambda: ConstantSchedule(name="constant"), description="Learning-rate schedule over epochs."
    )


class EarlyStopping(Section):
    """Stop once the monitored metric has not improved for `patience` epochs."""

    monitor: Literal["val_loss", "val_accuracy", "train_loss", "train_accuracy"] = Field(
        "val_loss", description="Metric watched for improvement."
    )
    patience: Integer = Field(10, ge=1, le=MAX_EPOCHS, description="Epochs without improvement before stopping.")
    min_delta: Number = Field(0.0, ge=0, description="Smallest change that counts as an improvement.")


class TrainConfig(Section):
    """The minibatch training loop."""

    epochs: Integer = Field(100, ge=1, le=MAX_EPOCHS, description="Passes over the training data.")
    batch_size: BatchSize = Field(64, description="Samples per gradient step, or 'full' for full-batch descent.")
    shuffle: bool = Field(True, description="Reshuffle the training data every epoch.")
    dtype: Literal["float32", "float64"] = Field("float32", description="Floating-point type of data and parameters.")
    early_stopping: EarlyStopping | None = Field(
        None, description="Stop when the monitored metric stops improving (null: off)."
    )
    diagnostics: bool = Field(True, description="Record per-layer diagnostics (update/weight ratios, dead units).")


class OutputConfig(Section):
    """Where the run directory goes."""

    dir: PathText | None = Field(None, description="Run directory (default: runs/<name>).")


class Config(Section):
    """One training run: data, model, loss, regularization, optimizer, loop and output."""

    name: str | None = Field(None, description="Run name (default: the config file's name without extension).")
    seed: Integer = Field(0, ge=0, le=2**63 - 1, description="Seed of every random stream (data, init, shuffling).")
    data: DataConfig = Field(description="Where the samples come from and how they are split.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The fully connected network.")
    loss: Literal["softmax", "svm"] = Field(
        "softmax", description="Data loss: softmax cross-entropy or multiclass SVM (hinge)."
    )
    regularization: RegularizationConfig = Field(
        default_factory=RegularizationConfig, description="Weight penalties added to the data loss."
    )
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="Update rule and learning rate.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="The training loop.")
    output: OutputConfig = Field(default_factory=OutputConfig, description="Where the run is written.")

    @field_validator("name")
    @classmethod
    def _usable_as_directory(cls, name):
        if name is not None and (name in ("", ".", "..") or re.search(r"[/\\\x00-\x1f]", name)):
            raise _invalid(
                f"must be a plain name (no '/', '\\' or control characters, not '.' or '..'), got {show_value(name)}"
            )
        return name

    @model_validator(mode="after")
    def _fill_name_and_dir(self, info):
        """name defaults to the config file's stem (passed as context), output.dir to runs/<name>."""
        if self.name is None:
            self.name = (info.context or {}).get("default_name", "run")
        if self.output.dir is None:
            self.output.dir = f"runs/{self.name}"
        return self


def parse_override(text: str) -> tuple[str, Any]:
    """Split `KEY=VALUE` into (dotted key, value); the value is read as YAML, so [64, 32] is a list and 1e-3 a float."""
    key, sep, value = str(text).partition("=")
    parts = [part.strip() for part in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"override {show_value(text)}: expected KEY=VALUE with a dotted key, e.g. optimizer.lr=0.1")
    return ".".join(parts), parse_yaml(value, f"override {show_value(text)}")


def _apply_overrides(raw, overrides):
    """A copy of `raw` with each override set, plus problems with the overrides themselves.

    Only mappings on an override's path are copied, so `raw` and anything YAML aliases share stay untouched.
    An absent or null mapping on the path is created: train.early_stopping.patience=3 turns early stopping on.
    """
    raw, problems = dict(raw), []
    for text in overrides:
        try:
            key, value = parse_override(text)
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        parts = key.split(".")
        node = raw
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is not None and not isinstance(child, dict):
                problems.append(
                    f"{'.'.join(parts[: i + 1])}: cannot set {key} inside {show_value(child)}, not a mapping"
                )
                break
            node[part] = node = dict(child or {})
        else:
            node[parts[-1]] = value
    return raw, problems


def _model_at(loc):
    """Follow an error location through the models: (user's dotted path, model holding the last key, schedule name)."""
    model, path, schedule = Config, [], None
    for part in loc:
        if model is SCHEDULES and part in SCHEDULES:
            model, schedule = SCHEDULES[part], part
            continue
        path.append(str(part))
        field = model.model_fields.get(part) if isinstance(model, type) and isinstance(part, str) else None
        if field is None:
            model = None
        elif part == "schedule":
            model = SCHEDULES
        else:
            model = next(
                (
                    t
                    for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                    if isinstance(t, type) and issubclass(t, BaseModel)
                ),
                None,
            )
    return path, model, schedule


_ALIASES = {
    "learning_rate": "lr",
    "weight_decay": "l2",
    "lambda": "l2",
    "hidden_sizes": "hidden",
    "hidden_layers": "hidden",
    "layers": "hidden",
    "num_epochs": "epochs",
    "max_epochs": "epochs",
    "batch": "batch_size",
    "scheduler": "schedule",
    "lr_schedule": "schedule",
    "optim": "optimizer",
}


def _unknown_key(key, model, schedule):
    """'unknown key' with a difflib suggestion among the keys allowed there, or the allowed keys when none is close.

    Names other libraries use (learning_rate, weight_decay, ...) also suggest ours when ours is allowed there.
    """
    allowed = list(model.model_fields) if isinstance(model, type) else []
    names = {**{alias: ours for alias, ours in _ALIASES.items() if ours in allowed}, **{k: k for k in allowed}}
    where = f" for schedule '{schedule}'" if schedule else ""
    close = difflib.get_close_matches(str(key).lower(), names, n=1)
    if close:
        return f"unknown key{where} (did you mean '{names[close[0]]}'?)"
    return f"unknown key{where} (allowed: {', '.join(allowed)})" if allowed else f"unknown key{where}"


_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_TYPES = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
}


def _problem(err):
    """One `dotted.path: message` line for a pydantic error."""
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    path, got = _model_at(err["loc"])[0], show_value(value)
    if kind == "extra_forbidden":
        _, owner, schedule = _model_at(err["loc"][:-1])
        message = _unknown_key(err["loc"][-1], owner, schedule)
    elif kind == "missing":
        message = "required key is missing" + (" (a config needs at least data.source)" if path == ["data"] else "")
    elif kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        message = f"must be {_BOUNDS[kind]} {bound}, got {got}"
    elif kind == "literal_error":
        message = f"{got} is not one of " + ", ".join(re.findall(r"'([^']*)'", ctx["expected"]))
    elif kind == "union_tag_invalid":
        path.append("name")
        message = f"{show_value(value['name'])} is not one of {', '.join(SCHEDULES)}"
    elif kind == "union_tag_not_found":
        path.append("name")
        message = f"required key is missing (one of {', '.join(SCHEDULES)})"
    elif kind == "finite_number" or (kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)):
        message = f"must be a finite number, got {got}"
    elif kind in _TYPES:
        message = f"expected {_TYPES[kind]}, got {got}"
    elif kind == "invalid_key":
        message = "keys must be strings"
    else:
        message = err["msg"]
    return f"{'.'.join(path) or '(top level)'}: {message}"


def _kind(value):
    names = {
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def config_from_dict(
    raw: dict, source: str | None = None, overrides: Sequence[str] = (), default_name: str = "run"
) -> Config:
    """Validate a plain dict (e.g. a checkpoint's embedded config) into a Config; every problem in one ConfigError."""
    if not isinstance(raw, dict):
        raise ConfigError(f"top level must be a mapping of keys, got {_kind(raw)}", source)
    raw, problems = _apply_overrides(raw, overrides)
    try:
        config = Config.model_validate(raw, context={"default_name": default_name})
    except ValidationError as e:
        problems += [_problem(err) for err in e.errors()]
    if problems:
        raise ConfigError(problems, source)
    return config


def read_config_file(path: str | Path) -> dict:
    """A config file's plain, not yet validated mapping (a sweep composes its params onto it)."""
    path = Path(path)
    if path.suffix.lower() in (".npz", ".npy"):
        raise ConfigError(
            f"{path}: a NumPy file (a checkpoint?), not a YAML config; the commands that take a "
            f"checkpoint are eval, predict and inspect"
        )
    raw = read_yaml_file(path, "a config is a few hundred bytes")
    if raw is None:
        raise ConfigError(f"{path}: is empty; a config needs at least data.source")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {_kind(raw)}")
    return raw


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, override and validate a YAML config file; name defaults to the file's stem, output.dir to runs/<name>."""
    path = Path(path)
    return config_from_dict(read_config_file(path), str(path), overrides, default_name=path.stem)


def config_to_dict(config: Config) -> dict:
    """The fully resolved config as plain JSON/YAML types, every default filled in."""
    return config.model_dump(mode="json")


def dump_config_yaml(config: Config, header_lines: Sequence[str] = ()) -> str:
    """The config as YAML that load_config reads back to an equal Config, after `# ` comment header lines."""
    comments = [
        f"# {yaml.reader.Reader.NON_PRINTABLE.sub('?', part)}".rstrip()
        for line in header_lines
        for part in (str(line).splitlines() or [""])
    ]
    body = yaml.dump(config_to_dict(config), Dumper=ConfigDumper, sort_keys=False, allow_unicode=True)
    return "".join(f"{c}\n" for c in comments) + body


def flatten(tree, prefix=""):
    """{dotted.key: value} for every leaf of a nested dict (lists are leaves)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def changed_keys(old, new):
    """Dotted keys whose values differ between two nested config dicts, sorted."""
    a, b = flatten(old), flatten(new)
    return sorted(key for key in set(a) | set(b) if a.get(key) != b.get(key))


def json_schema():
    """The config's JSON Schema (draft-07, with descriptions, enums and defaults) for editors and validators."""
    schema = Config.model_json_schema(ref_template="#/definitions/{model}")
    schema["definitions"] = schema.pop("$defs", {})
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": "nncli config", **schema}


def provenance(path, overrides: Sequence[str] = ()):
    """Where each resolved value came from: {dotted.key: 'default' | 'file' | 'override'}."""
    config = load_config(path, overrides)
    raw = parse_yaml(Path(path).read_text(encoding="utf-8"), str(path)) or {}
    in_file = flatten(raw) if isinstance(raw, dict) else {}
    overridden = [parse_override(o)[0] for o in overrides]
    origin = {}
    for key in flatten(config_to_dict(config)):
        if any(key == o or key.startswith(o + ".") for o in overridden):
            origin[key] = "override"
        elif key in in_file or any(key.startswith(k + ".") for k in in_file):
            origin[key] = "file"
        else:
            origin[key] = "default"
    return config, origin
