"""Commented starter configs written by `nncli init`; the choices they list come from the registries."""

from nncli.nn.activations import ACTIVATIONS
from nncli.nn.initialization import INITS
from nncli.nn.losses import LOSSES
from nncli.optim.rules import OPTIMIZERS
from nncli.optim.schedules import SCHEDULES

MODELINE = "# yaml-language-server: $schema=schema.json\n"  # the schema `nncli schema` prints, saved beside the config

COMMON = """model:
  hidden: [100]            # [] linear, [h] two-layer, [h1, h2] three-layer
  activation: relu         # {activations}
  init: he                 # {inits} (normal: with init_std)
  dropout: 0.0             # probability of dropping a hidden unit while training
loss: softmax              # {losses}
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
}


def starter_config(template, name):
    """The text of a commented starter config for `template` (spiral, digits or csv)."""
    data, values = DATA[template]
    return MODELINE + data.format(name=name) + COMMON.format(**values, **_choices())


def _choices():
    """The registered names each commented key may take, as `a | b | c` (schedules with their parameters)."""
    schedules = [f"{n} {{{', '.join(p.name for p in s.params)}}}" if s.params else n for n, s in SCHEDULES.items()]
    names = {"activations": ACTIVATIONS, "inits": INITS, "losses": LOSSES, "optimizers": OPTIMIZERS}
    return {key: " | ".join(registry) for key, registry in names.items()} | {"schedules": " | ".join(schedules)}
