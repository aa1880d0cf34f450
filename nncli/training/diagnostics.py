"""Babysitting training, as the course teaches it: per-layer health numbers each epoch and plain-language warnings.

Per layer: the gradient norm, the update-to-weight ratio ‖ΔW‖/‖W‖ of the epoch's last step (rule of thumb ~1e-3),
the weight norm, the fraction of dead ReLUs (never active on any of the epoch's batches) and the fraction of
saturated sigmoid/tanh units (saturated on at least 90 % of the epoch's samples). With a norm (batchnorm, layernorm),
also the mean and std of each hidden layer's pre-activation on the epoch's last batch, before the norm (z = h·W + b:
preact_mean, preact_std) and after it (gamma·x̂ + beta: normed_mean, normed_std), so the norm fixing a collapsed or
exploding scale shows. Each kind of warning is given once, and again only when its figure has clearly worsened
since (FRACTION_WORSE, RATIO_WORSE): 58 % dead ReLUs, then 100 %, are two warnings; 58 %, 62 %, 70 % are one.
"""

import math

import numpy as np

from nncli.nn.losses import LOSSES
from nncli.optim.clipping import global_norm

# ‖ΔW‖/‖W‖: healthy is about 1e-3; warn two orders of magnitude either side, judged on the median over the last
# RATIO_WINDOW epochs from epoch RATIO_FROM_EPOCH and step RATIO_FROM_STEP on, because a fresh net's first updates
# are large and it settles by steps, not epochs: the course's spiral at lr 1.0 starts near 0.3 and settles at 3e-3
# to 1e-2 within 40 steps (10 epochs of 4 minibatches); full-batch, one step an epoch, its ratio is still 0.3 at
# epoch 25 and 0.02 at epoch 40, on its way to 100 % validation accuracy. An update larger than the weights
# themselves (RATIO_BLOWUP) is too high from epoch 2 and step RATIO_BLOWUP_FROM_STEP on (that full-batch run's
# second step is 1.05, its later ones at most 0.8; lr 5 in minibatches reaches 1.1 in epoch 2, lr 20 4.1).
RATIO_HIGH, RATIO_LOW, RATIO_BLOWUP = 0.1, 1e-5, 1.0
RATIO_WINDOW, RATIO_FROM_EPOCH, RATIO_FROM_STEP, RATIO_BLOWUP_FROM_STEP = 5, 10, 40, 5
# A warned condition is warned again when its figure worsens past these: a fraction by 0.25 more (or reaching 1),
# an update ratio by a factor of 10 (an order of magnitude) up, when too high, or down, when too low.
FRACTION_WORSE, RATIO_WORSE = 0.25, 10.0
FRACTIONS = ("dead", "saturated")
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5
# Overfitting, on medians over the last OVERFIT_EPOCHS epochs: training accuracy at least OVERFIT_GAP above
# validation accuracy, validation loss at least OVERFIT_LOSS_RISE × its best earlier value, training loss lower.
OVERFIT_EPOCHS = 5
OVERFIT_GAP = 0.1
OVERFIT_LOSS_RISE = 1.5


def expected_initial_loss(loss_name, num_classes, options=None):
    """What a fresh net with small weights should score: ln C for softmax, C − 1 for the SVM (all margins ≈ 1),
    ½ per output for l2 on standardized targets, ln 2 per attribute for logistic (`options`: the loss's own)."""
    return LOSSES[loss_name].initial(num_classes, **(options or {}))


def initial_loss_warning(data_loss, loss, num_classes, targets=None):
    """A warning when the regularization-free loss before training is far from its expected value, else None.
    `loss` is the loss's name, or (name, options). With `targets` (regression targets kept in their own units,
    data.standardize_target false) the expected value is the loss of outputs 0 on them, what a fresh net scores."""
    loss_name, options = (loss, None) if isinstance(loss, str) else loss
    if targets is not None:
        expected = LOSSES[loss_name].fn(np.zeros_like(targets), targets, **(options or {}))[0]
    else:
        expected = expected_initial_loss(loss_name, num_classes, options)
    if math.isfinite(data_loss) and data_loss <= 3 * expected:
        return None
    return (
        f"initial {loss_name} loss is {data_loss:.3g}, far above the {expected:.3g} a fresh net should start "
        f"at ({LOSSES[loss_name].initial_formula}); the initial weights are probably too large or the "
        f"data is not standardized (check model.init and data.standardize)"
    )


class Diagnostics:
    """Accumulates per-step statistics of a Network during an epoch; `end_epoch` returns the numbers and warnings."""

    def __init__(self, net):
        self.net = net
        self.hidden = [layer for layer in net.layers if layer.health is not None]
        self.warned = set()
        self.reported = {}  # kind → the figure its last warning gave
        self.history = []
        self.steps = 0  # steps seen (after_forward); 0 when fed epochs alone, then epochs decide when a net settled
        self._reset()

    def _reset(self):
        self.active = {}
        self.saturated = {}
        self.samples = 0

    def state(self):
        """JSON-ready accumulators of the epoch in progress and the warnings already given (for exact resume)."""
        return {
            "active": {str(n): a.tolist() for n, a in self.active.items()},
            "saturated": {str(n): c.tolist() for n, c in self.saturated.items()},
            "samples": self.samples,
            "warned": sorted(self.warned),
            "reported": dict(self.reported),
            "steps": self.steps,
        }

    def load_state(self, state, rows):
        """Continue from `state()`; a checkpoint written before `reported` and `steps` were kept takes the figures of
        the next warnings' checks as already reported and the steps as settled (its warnings were given once)."""
        self.active = {int(n): np.array(a, bool) for n, a in state["active"].items()}
        self.saturated = {int(n): np.array(c) for n, c in state["saturated"].items()}
        self.samples, self.warned, self.history = state["samples"], set(state["warned"]), list(rows)
        reported = state.get("reported")
        reported = reported if isinstance(reported, dict) else {}
        self.reported = {k: v for k, v in reported.items() if k in self.warned and _is_number(v)}
        steps = state.get("steps")
        self.steps = steps if isinstance(steps, int) and not isinstance(steps, bool) and steps >= 0 else RATIO_FROM_STEP

    def after_forward(self):
        """Record which hidden units fired (ReLU family) or saturated (sigmoid/tanh) on this batch."""
        for n, layer in enumerate(self.hidden, start=1):
            if layer.health == "saturated":
                counts = layer.saturated(layer.out).sum(axis=0)
                self.saturated[n] = self.saturated.get(n, 0) + counts
            else:
                fired = layer.kinks().any(axis=0)  # the ReLU family's kinks() is "input > 0"
                self.active[n] = self.active.get(n, False) | fired
        self.samples += self.net.scores.shape[0]
        self.steps += 1

    def before_last_update(self):
        """Remember the weights before the epoch's last update, to measure ‖ΔW‖/‖W‖."""
        self._theta_before = self.net.theta.copy()
        self._grads = {name: global_norm(g.ravel()) for name, g in self.net.grads.items() if name.startswith("W")}
        self._normed = self._norm_stats()

    def _norm_stats(self):
        """{W_i: mean and std of z_i = h·W_i + b_i and of the norm's output gamma_i·x̂ + beta_i} on the batch just run
        (train mode), for each hidden layer with a norm. z_i is recomputed from the affine's cached input, as the
        norm and the activation work in place; one matmul per layer, once per epoch."""
        stats = {}
        for i, (affine, norm) in enumerate(zip(self.net.affines, self.net.norms), start=1):
            z = np.matmul(affine.x, affine.W)
            z += affine.b
            normed = np.multiply(norm.xhat, norm.gamma)
            normed += norm.beta
            stats[f"W{i}"] = {
                "preact_mean": float(z.mean(dtype=np.float64)),
                "preact_std": float(z.std(dtype=np.float64)),
                "normed_mean": float(normed.mean(dtype=np.float64)),
                "normed_std": float(normed.std(dtype=np.float64)),
            }
        return stats

    def end_epoch(self, row):
        """Per-layer numbers for this epoch (a dict for metrics.jsonl) and the new warnings it raises."""
        layers, warnings = {}, []
        before = getattr(self, "_theta_before", None)
        normed = getattr(self, "_normed", {})
        offsets = 0
        for i in range(1, len(self.net.affines) + 1):
            W = self.net.params[f"W{i}"]
            entry = {"weight_norm": global_norm(W.ravel())}
            if before is not None:
                old = before[offsets : offsets + W.size]
                delta = global_norm(W.ravel() - old)
                entry["grad_norm"] = self._grads[f"W{i}"]
                entry["update_ratio"] = delta / max(global_norm(old), 1e-12)
            offsets += W.size
            layers[f"W{i}"] = {**entry, **normed.get(f"W{i}", {})}
        for n in range(1, len(self.hidden) + 1):
            if n in self.active:
                layers[f"W{n}"]["dead_fraction"] = float(1 - np.mean(self.active[n]))
            if n in self.saturated and self.samples:
                layers[f"W{n}"]["saturated_fraction"] = float(np.mean(self.saturated[n] / self.samples >= 0.9))
        warnings += self._warnings(layers, row)
        self.history.append(row)
        self._reset()
        return layers, warnings

    def _once(self, kind, text, figure=None):
        """[text] the first time `kind` is found, and again, saying so, when its `figure` has clearly worsened since
        its last warning (_worsened); else []."""
        if kind in self.warned:
            last = self.reported.get(kind)
            if figure is None:
                return []
            if last is None:  # warned by a checkpoint that kept no figure: this one is the reference from now on
                self.reported[kind] = figure
                return []
            if not _worsened(kind, figure, last):
                return []
            text = f"{text.split(' — ')[0]}; worse than the {_shown(kind, last)} reported before"
        self.warned.add(kind)
        if figure is not None:
            self.reported[kind] = figure
        return [text]

    def _ratio(self, name, ratio):
        """The update/weight ratio of layer `name` to judge: this epoch's if it blew up, else the median over the last
        RATIO_WINDOW epochs; None while a fresh net is still settling."""
        epoch = len(self.history) + 1
        if ratio is None or epoch < 2 or 0 < self.steps < RATIO_BLOWUP_FROM_STEP:
            return None
        if (epoch < RATIO_FROM_EPOCH or 0 < self.steps < RATIO_FROM_STEP) and ratio <= RATIO_BLOWUP:
            return None  # a fresh net still settling
        if ratio > RATIO_BLOWUP:
            return ratio
        earlier = [r.get("layers", {}).get(name, {}).get("update_ratio") for r in self.history[-(RATIO_WINDOW - 1) :]]
        return float(np.median([r for r in earlier if r is not None] + [ratio]))

    def _warnings(self, layers, row):
        found = []
        for name, entry in layers.items():
            ratio = self._ratio(name, entry.get("update_ratio"))
            if ratio is not None and ratio > RATIO_HIGH:
                found += self._once(
                    "ratio_high",
                    f"update/weight ratio in {name} is {ratio:.2g} (healthy: about "
                    f"1e-3) — the learning rate is probably too high",
                    ratio,
                )
            elif ratio is not None and 0 < ratio < RATIO_LOW:
                found += self._once(
                    "ratio_low",
                    f"update/weight ratio in {name} is {ratio:.2g} (healthy: about "
                    f"1e-3) — the learning rate is probably too low",
                    ratio,
                )
            dead = entry.get("dead_fraction")
            if dead is not None and dead >= DEAD_FRACTION:
                layer = name[1:]
                found += self._once(
                    "dead",
                    f"{dead:.0%} of layer-{layer} ReLUs are dead (never active this epoch) — "
                    f"they cannot learn; lower the learning rate, use leaky_relu, or check "
                    f"model.init and model.bias_init",
                    dead,
                )
            sat = entry.get("saturated_fraction")
            if sat is not None and sat >= SATURATED_FRACTION:
                found += self._once(
                    "saturated",
                    f"{sat:.0%} of layer-{name[1:]} units are saturated — gradients "
                    f"vanish there; use smaller initial weights or relu",
                    sat,
                )
        evidence = overfitting(self.history + [row])
        if evidence:
            found += self._once(
                "overfit",
                f"{evidence} — overfitting; try more regularization (regularization.l2, "
                f"model.dropout) or early stopping",
            )
        return found


def _worsened(kind, figure, last):
    """Whether `figure` is clearly worse than the `last` one reported for `kind`: a dead or saturated fraction up by
    FRACTION_WORSE (or to all units), an update ratio RATIO_WORSE times further from healthy."""
    if kind in FRACTIONS:
        return figure > last and figure >= min(last + FRACTION_WORSE, 1.0)
    if kind == "ratio_high":
        return figure >= last * RATIO_WORSE
    return kind == "ratio_low" and figure <= last / RATIO_WORSE


def _shown(kind, figure):
    return f"{figure:.0%}" if kind in FRACTIONS else f"{figure:.2g}"


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def overfitting(rows):
    """Why the metric rows show overfitting, in words, or None.

    On medians over the last OVERFIT_EPOCHS epochs (one noisy epoch proves nothing): training accuracy clearly above
    validation accuracy (the course's measure of overfitting), validation loss well above its best earlier value,
    training loss below its value at that epoch. Validation loss is the judge because accuracy on a small
    validation split moves in coarse, noisy steps.
    """
    if len(rows) <= OVERFIT_EPOCHS or "val_accuracy" not in rows[-1]:  # regression: no accuracy to compare
        return None
    median = {
        key: float(np.median([r[key] for r in rows[-OVERFIT_EPOCHS:]]))
        for key in ("train_loss", "val_loss", "train_accuracy", "val_accuracy")
    }
    best = min(rows[:-OVERFIT_EPOCHS], key=lambda r: r["val_loss"])
    if (
        median["train_accuracy"] >= median["val_accuracy"] + OVERFIT_GAP
        and median["val_loss"] >= OVERFIT_LOSS_RISE * best["val_loss"]
        and median["train_loss"] < best["train_loss"]
    ):
        return (
            f"validation loss rose from {best['val_loss']:.3g} (epoch {best['epoch']}) to {median['val_loss']:.3g} "
            f"while training loss fell to {median['train_loss']:.3g}; training accuracy {median['train_accuracy']:.0%}"
            f" vs validation {median['val_accuracy']:.0%} (medians of epochs {rows[-OVERFIT_EPOCHS]['epoch']}–"
            f"{rows[-1]['epoch']})"
        )
    return None
