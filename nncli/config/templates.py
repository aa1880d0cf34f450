"""Commented starter configs written by `nncli init`, from a template or from a profiled CSV (`--from`); the choices
they list come from the registries."""

import os
import textwrap
from pathlib import Path

import yaml

from nncli.data.encoding import MISSING
from nncli.data.profile import delimiter_name
from nncli.nn.activations import ACTIVATIONS
from nncli.nn.initialization import INITS
from nncli.nn.losses import LOSSES
from nncli.nn.normalization import NORMS
from nncli.optim.rules import OPTIMIZERS
from nncli.optim.schedules import SCHEDULES

MODELINE = "# yaml-language-server: $schema=schema.json\n"  # the schema `nncli schema` prints, saved beside the config

COMMON = """model:
  hidden: [100]            # [] linear, [h] two-layer, [h1, h2] three-layer
  activation: relu         # {activations}
  init: he                 # {inits} (normal: with init_std)
  dropout: 0.0             # probability of dropping a hidden unit while training
  norm: none               # none | {norms} (after each hidden affine)
loss: {loss:<21}# {losses}
regularization:
  l2: 0.001                # 0.5·l2·Σ‖W‖², weights only
  l1: 0.0                  # l1·Σ|W|
optimizer:
  name: {optimizer}          # {optimizers}
  lr: {lr}
  schedule: {{name: constant}}   # {schedules}
train:
  epochs: {epochs}
  batch_size: 64           # or "full" for full-batch gradient descent
  dtype: float32           # float32 | float64
  # early_stopping: {{monitor: val_loss, patience: 10}}
"""

DATA = {
    "spiral": (
        """# Starter: the course's spiral, three interleaved arms a linear classifier cannot separate.
name: {name}
seed: 0
data:
  source: spiral
  classes: 3
  samples_per_class: 100
  noise: 0.2
  val_fraction: 0.2
""",
        {"optimizer": "sgd", "lr": 1.0, "epochs": 300},
    ),
    "digits": (
        """# Starter: the bundled UCI handwritten digits (8x8 images, 10 classes).
name: {name}
seed: 0
data:
  source: digits
  val_fraction: 0.1
  test_fraction: 0.2       # held out; nncli eval reports it
""",
        {"optimizer": "adam", "lr": 0.001, "epochs": 60},
    ),
    "csv": (
        """# Starter: your own CSV file with a header row; every column but the target is a feature.
name: {name}
seed: 0
data:
  source: data/iris.csv    # path to your file
  target: species          # the label column (default: the last column)
  # features: [sepal_length, petal_length]   # default: every other column
  val_fraction: 0.2
  test_fraction: 0.2
""",
        {"optimizer": "adam", "lr": 0.01, "epochs": 100},
    ),
    "regression": (
        """# Starter: regression on the noisy sine, y = sin(x) + noise·N(0, 1): a net that learns sin exactly leaves an
# RMSE of the noise (0.1). Metrics are loss, rmse, mae and r2, in the target's own units.
name: {name}
seed: 0
data:
  source: sine
  samples: 1000
  noise: 0.1
  val_fraction: 0.2
  test_fraction: 0.2       # held out; nncli eval reports it
  standardize_target: true # fit on standardized targets; every number shown is in the target's units
# huber_delta: 1.0         # loss huber: quadratic within δ of the target, linear beyond
""",
        {"optimizer": "adam", "lr": 0.01, "epochs": 150, "loss": "l2"},
    ),
}


def starter_config(template, name):
    """The text of a commented starter config for `template` (spiral, digits, csv or regression)."""
    data, values = DATA[template]
    return MODELINE + data.format(name=name) + COMMON.format(**{"loss": "softmax", **values}, **_choices())


def _choices():
    """The registered names each commented key may take, as `a | b | c` (schedules with their parameters)."""
    schedules = [f"{n} {{{', '.join(p.name for p in s.params)}}}" if s.params else n for n, s in SCHEDULES.items()]
    names = {"activations": ACTIVATIONS, "inits": INITS, "losses": LOSSES, "optimizers": OPTIMIZERS, "norms": NORMS}
    return {key: " | ".join(registry) for key, registry in names.items()} | {"schedules": " | ".join(schedules)}


def config_from_profile(profile, config_path):
    """The text of a commented config training on the profiled CSV (nncli.data.profile.Profile), written at
    `config_path`: its data path relative to the config's directory (the path rule), every choice commented."""
    lines = [
        f"# Written by nncli init from {_comment(profile.path)}: {profile.rows:,} rows, {len(profile.columns) + 1}"
    ]
    lines[0] += f" columns split by {delimiter_name(profile.delimiter)}."
    if profile.task == "regression":
        lines += [
            f"# Task guessed: regression of {_comment(repr(profile.target))}, which {_comment(profile.reason)}:",
            "# loss l2 (or l1, huber), metrics rmse, mae and r2 in the target's units.",
        ]
    else:
        lines.append(f"# Task guessed: classification of {_comment(repr(profile.target))}, {profile.classes} classes.")
    name = Path(config_path).stem
    header = MODELINE + "\n".join(lines) + f"\nname: {_yaml(name)}\nseed: 0\n"
    loss = "l2" if profile.task == "regression" else "softmax"
    return header + _data_section(profile, config_path) + COMMON.format(**CSV_TRAINING, loss=loss, **_choices())


CSV_TRAINING = DATA["csv"][1]


def _data_section(profile, config_path):
    """The data: mapping, one commented key a line."""
    source = _relative(profile.path, config_path)
    rows = [("source", source, "" if os.path.isabs(source) else "the CSV, relative to this file")]
    regression = profile.task == "regression"
    rows.append(("target", profile.target, "the regression target" if regression else "the label column"))
    if profile.delimiter != ",":
        rows.append(("delimiter", profile.delimiter, "detected from the header"))
    left_out = [c for c in profile.columns if c.kind == "left out"]
    if left_out:
        rows.append(("features", profile.features, f"{len(profile.features)} of {len(profile.columns)} columns"))
    categories = {c.name: c.distinct for c in profile.columns if c.kind == "categorical"}
    shown = ", ".join(f"{n} ({k})" for n, k in categories.items()) or "none"
    rows.append(("categorical", "auto", f"text columns, one-hot encoded: {shown}"))
    rows.append(_missing_row(profile))
    smallest = profile.rows if regression else profile.smallest  # regression splits are not stratified
    fractions = (0.2, 0.2) if smallest >= 3 else (0.2, 0.0) if smallest == 2 else (0.0, 0.0)
    rows.append(("val_fraction", fractions[0], ""))
    why = "held out; nncli eval reports it" if fractions[1] else f"the smallest class has {smallest} row(s)"
    rows.append(("test_fraction", fractions[1], why))
    text = "data:\n"
    for key, value, note in rows:
        entry, parts = f"  {key}: {_yaml(value)}", [_comment(part) for part in note.split("\n")]
        note = "; ".join(parts)
        if len(entry) + len(note) > 90:  # a long note goes on the lines above, one part a line
            text += "".join(f"  # {line}\n" for part in parts for line in textwrap.wrap(part, 110)) + entry + "\n"
        else:
            text += (f"{entry:<28} # {note}" if note else entry) + "\n"
    for column in left_out:
        note = f"left out: {_comment(column.name)}: {_comment(column.reason)}"
        text += "".join(f"  # {line}\n" for line in textwrap.wrap(note, 110))
    return text


def _missing_row(profile):
    """data.missing: error when nothing is missing, median when cells are, drop when labels are (unfillable)."""
    counts = ", ".join(f"{name} {n}" for name, n in profile.missing_cells.items())
    if profile.missing_labels:
        note = f"{profile.missing_labels} row(s) without a label, which only dropping handles"
        return "missing", "drop", note + (f"\nmissing cells: {counts}" if counts else "")
    if not counts:
        return "missing", "error", "no missing cells; a missing cell is refused"
    others = " | ".join(m for m in MISSING if m != "median")
    note = f"missing cells: {counts}\nfilled with the training split's median (text columns: the most frequent)"
    return "missing", "median", f"{note}\nthe other choices: {others}"


def _relative(path, config_path):
    """`path` relative to the directory of `config_path`; absolute when they share only the root (or not even that)."""
    target, base = Path(path).resolve(), Path(config_path).resolve().parent
    try:
        if os.path.commonpath([target, base]) != target.anchor:  # sharing more than the root: relative reads well
            return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:
        pass
    return str(target)


def _yaml(value):
    """`value` as one line of YAML flow text (quoted when needed), so any column name reads back as written."""
    text = yaml.safe_dump([value], default_flow_style=True, allow_unicode=True, width=2**31).strip()
    return text[1:-1]


def _comment(text):
    """Text safe inside a YAML comment: one line, no control characters."""
    return "".join(c if c.isprintable() else "?" for c in str(text))
