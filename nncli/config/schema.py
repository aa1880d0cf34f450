"""The config's sections as pydantic models: the contract between the CLI, the data and the trainer.

Every key has a default except `data.source`. Numbers are strict: a quoted "0.1" is a string, not a number, and a
bool is not a number; an integer key accepts a whole float such as 1e3 but refuses 3.7. The names a key may take
(activations, losses, inits, optimizers, schedules, monitors) come from their registries.
"""

import difflib
import re
from typing import Annotated, Literal, Union

from pydantic import Field, create_model, field_validator, model_validator

from nncli.config.fields import (
    MAX_EPOCHS,
    MAX_SAMPLES,
    MAX_WIDTH,
    BatchSize,
    Fraction,
    Integer,
    Number,
    PathText,
    Section,
    _invalid,
    choice,
)
from nncli.config.weights import LossWeights
from nncli.data.builtin import BUILTINS as BUILTIN_DATASETS
from nncli.data.table import NA_VALUES
from nncli.errors import show_value
from nncli.nn.activations import ACTIVATIONS
from nncli.nn.initialization import INITS
from nncli.nn.losses import LOSSES
from nncli.nn.metrics import monitors
from nncli.nn.normalization import NORMS
from nncli.optim.rules import OPTIMIZERS
from nncli.optim.schedules import SCHEDULES


class DataConfig(Section):
    """Where the samples come from: a built-in generator or a file, and how they are split."""

    source: PathText = Field(
        description=f"Built-in dataset ({', '.join(BUILTIN_DATASETS)}) or a .csv/.npz/.npy/.idx/.gz file."
    )
    val_fraction: Fraction = Field(0.2, description="Fraction of the samples held out for validation.")
    test_fraction: Fraction = Field(0.0, description="Fraction of the samples held out for testing.")
    standardize: bool = Field(True, description="Shift and scale features by the training split's mean and std.")
    target: str | list[str] | None = Field(
        None,
        description="CSV label column (default: the last column); for regression or attributes, one column or a "
        "list of columns (several targets).",
    )
    standardize_target: bool = Field(
        True,
        description="Regression: shift and scale each target by the training split's mean and std while training "
        "(every number shown is in the target's own units).",
    )
    features: list[str] | None = Field(None, description="CSV feature columns (default: every other column).")
    delimiter: Literal[",", ";", "\t", "|"] | None = Field(
        None, description="CSV cell separator (default: whichever of , ; tab | splits the header into most columns)."
    )
    missing: Literal["error", "drop", "mean", "median", "most_frequent"] = Field(
        "error",
        description="CSV cells holding a na_values token: refuse them, drop their rows, or fill them with the "
        "training split's mean, median or most frequent value (text columns: most frequent).",
    )
    na_values: list[str] = Field(
        list(NA_VALUES), description="CSV cell texts (after stripping spaces) that mark a missing value."
    )
    categorical: Literal["auto"] | list[str] = Field(
        "auto",
        description="CSV feature columns to one-hot encode: 'auto' (the columns whose values are text) or a list.",
    )
    unknown_category: Literal["error", "ignore"] = Field(
        "error",
        description="A category not seen in training (eval, predict, val/test files): refuse it, or encode it "
        "as all zeros.",
    )
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
    activation: choice(ACTIVATIONS) = Field("relu", description="Nonlinearity after each hidden affine layer.")
    negative_slope: Number = Field(0.01, gt=0, description="leaky_relu: slope for negative inputs.")
    alpha: Number = Field(1.0, gt=0, description="elu: alpha·(exp(x) − 1) for negative inputs.")
    init: choice(INITS) = Field(
        "he", description="Weight init: he N(0, 2/fan_in), xavier N(0, 2/(fan_in+fan_out)), normal N(0, init_std²)."
    )
    init_std: Number = Field(0.01, gt=0, description="init: normal: std of the initial weights.")
    bias_init: Number = Field(
        0.0,
        description="Initial value of the hidden layers' biases: 0, or a small positive "
        "value such as 0.01 so that every ReLU fires at first.",
    )
    dropout: Fraction = Field(0.0, description="Probability of dropping a hidden unit in training (inverted dropout).")
    norm: choice(lambda: ["none", *NORMS]) = Field(
        "none",
        description="Normalization after each hidden affine, before its activation: batchnorm (each unit over the "
        "batch; running averages in evaluation) or layernorm (each row over its units); learned gamma and beta.",
    )
    norm_momentum: Number = Field(
        0.9, ge=0, lt=1, description="batchnorm: running = norm_momentum·running + (1 − norm_momentum)·batch."
    )
    norm_eps: Number = Field(1e-5, gt=0, description="batchnorm, layernorm: x̂ = (x − μ) / √(var + norm_eps).")

    @model_validator(mode="after")
    def _norm_needs_hidden_layers(self):
        if self.norm != "none" and not self.hidden:
            raise _invalid(
                f"model.norm {self.norm} normalizes the hidden layers, and model.hidden is [] (a linear classifier): "
                f"add a hidden layer or set model.norm: none"
            )
        return self


class RegularizationConfig(Section):
    """Weight penalties added to the data loss (weights only, not biases)."""

    l2: Number = Field(0.001, ge=0, description="L2 strength: loss += 0.5·l2·Σ W².")
    l1: Number = Field(0.0, ge=0, description="L1 strength: loss += l1·Σ |W|.")


def _schedule_model(schedule):
    """The config section of a registered schedule: its `name` and its parameters with their bounds."""
    fields = {"name": (Literal[schedule.name], Field(description=schedule.formula))}
    for p in schedule.params:
        kind, bounds = (Integer, {"le": MAX_EPOCHS}) if p.kind is int else (Number, {})
        fields[p.name] = (kind, Field(p.default, description=p.description, **bounds, **p.bounds))
    title = f"{schedule.name.capitalize()}Schedule"
    return create_model(title, __base__=Section, __doc__=schedule.summary, **fields)


SCHEDULE_MODELS = {name: _schedule_model(schedule) for name, schedule in SCHEDULES.items()}
Schedule = Annotated[Union[tuple(SCHEDULE_MODELS.values())], Field(discriminator="name")]


class OptimizerConfig(Section):
    """The update rule, its hyperparameters and the learning-rate schedule."""

    name: choice(OPTIMIZERS) = Field("sgd", description="Update rule.")
    lr: Number = Field(0.1, gt=0, description="Learning rate (the schedule's starting value).")
    momentum: Number = Field(0.9, ge=0, lt=1, description="momentum, nesterov: velocity decay μ.")
    decay_rate: Number = Field(0.99, gt=0, lt=1, description="rmsprop: decay of the squared-gradient cache.")
    beta1: Number = Field(0.9, ge=0, lt=1, description="adam: decay of the first-moment estimate.")
    beta2: Number = Field(0.999, ge=0, lt=1, description="adam: decay of the second-moment estimate.")
    eps: Number = Field(1e-8, gt=0, description="rmsprop, adam: added to the denominator.")
    clip_norm: Number | None = Field(None, gt=0, description="Rescale gradients whose global L2 norm exceeds this.")
    schedule: Schedule = Field(
        default_factory=lambda: SCHEDULE_MODELS["constant"](name="constant"),
        description="Learning-rate schedule over epochs.",
    )


class EarlyStopping(Section):
    """Stop once the monitored metric has not improved for `patience` epochs."""

    monitor: choice(lambda: monitors(("val", "train"))) = Field(
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
    tensorboard: bool = Field(
        False, description="Write TensorBoard event files to RUN_DIR/tensorboard/ (pip install 'nncli[tensorboard]')."
    )


class Config(Section):
    """One training run: data, model, loss, regularization, optimizer, loop and output."""

    name: str | None = Field(None, description="Run name (default: the config file's name without extension).")
    seed: Integer = Field(0, ge=0, le=2**63 - 1, description="Seed of every random stream (data, init, shuffling).")
    data: DataConfig = Field(description="Where the samples come from and how they are split.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="The fully connected network.")
    loss: choice(LOSSES) = Field(
        "softmax",
        description="Data loss, which decides the task: softmax cross-entropy or multiclass SVM (classification); "
        "l2, l1 or huber (regression); logistic (one or more 0/1 attributes).",
    )
    huber_delta: Number = Field(1.0, gt=0, description="huber: residuals beyond this are penalized linearly.")
    loss_weights: LossWeights = Field(
        None,
        description="Class weights (softmax, svm, logistic): the loss becomes the weighted mean Σ w_y L / Σ w_y, "
        "validation's too. 'balanced' is n / (classes × count) on the training split (logistic: n / (2 × count) for "
        "each attribute's positives and negatives), or {label: weight} as the labels are written in the data "
        "(logistic: {attribute: weight of its positives}); classes not named weigh 1.",
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
    def _monitor_fits_the_task(self):
        """A monitored metric the loss's task does not record (val_accuracy for l2) would never be seen."""
        es, task = self.train.early_stopping, LOSSES[self.loss].task
        if es is not None and es.monitor not in monitors(("val", "train"), task):
            allowed = ", ".join(monitors(("val", "train"), task))
            raise _invalid(
                f"train.early_stopping.monitor {es.monitor!r} is not recorded for loss {self.loss!r} ({task}); "
                f"its metrics are {allowed}"
            )
        return self

    @model_validator(mode="after")
    def _weights_fit_the_loss(self):
        """Class weights need classes: a regression loss has none to weigh."""
        if self.loss_weights is not None and LOSSES[self.loss].weighted is None:
            weighted = ", ".join(name for name, loss in LOSSES.items() if loss.weighted is not None)
            raise _invalid(
                f"loss_weights is for the losses with classes or attributes ({weighted}); loss {self.loss!r} "
                f"({LOSSES[self.loss].task}) has none to weigh"
            )
        return self

    @model_validator(mode="after")
    def _fill_name_and_dir(self, info):
        """name defaults to the config file's stem (passed as context), output.dir to runs/<name>."""
        if self.name is None:
            self.name = (info.context or {}).get("default_name", "run")
        if self.output.dir is None:
            self.output.dir = f"runs/{self.name}"
        return self
