"""A split's metrics from sums over its batches, so they are exact however the split was cut (minibatches in
training, chunks in evaluation, an epoch stopped and resumed half way).

A `Tally` for a loss's task adds each batch's (mean loss, outputs, targets) to a few running sums and turns them
into the metrics of nncli.nn.metrics for that task:
  classification  loss, accuracy
  regression      loss, rmse, mae, r2 — in the targets' own units: outputs and targets are mapped back with the
                  training split's target mean and std before they are compared
  attributes      loss, accuracy (mean over attributes), exact_match (every attribute right), micro_f1
"""

import numpy as np


class Tally:
    """Running sums of one split's metrics; `state()` and `restore` carry them across an interrupted epoch."""

    def __init__(self, task, outputs, target_mean=None, target_std=None):
        self.task, self.outputs = task, outputs
        self.mean = None if target_mean is None else np.asarray(target_mean, np.float64)
        self.std = None if target_std is None else np.asarray(target_std, np.float64)
        width = {"classification": 1, "regression": 4 * outputs, "attributes": outputs + 4}[task]
        self.sums = np.zeros(2 + width)  # [samples, loss·samples, the task's sums]
        self.weighted = None  # a class-weighted loss's [Σ w·L, Σ w] per group (evaluation only)

    def add(self, loss, scores, y, weighted=None):
        """Count a batch: its mean data loss, its outputs (n, K) and its targets (class ids (n,) or (n, K));
        `weighted`: a class-weighted loss's (Σ w·L, Σ w) per group, so the split's loss is their exact ratio."""
        n = len(y)
        if weighted is not None:
            self.weighted = np.array(weighted) if self.weighted is None else self.weighted + np.array(weighted)
        self.sums[0] += n
        self.sums[1] += loss * n
        rest = self.sums[2:]
        if self.task == "classification":
            rest[0] += np.count_nonzero(scores.argmax(axis=1) == y)
        elif self.task == "regression":
            f, t = self._units(scores), self._units(y)
            r = f - t
            k = self.outputs
            rest[:k] += (r * r).sum(axis=0)
            rest[k : 2 * k] += np.abs(r).sum(axis=0)
            rest[2 * k : 3 * k] += t.sum(axis=0)
            rest[3 * k :] += (t * t).sum(axis=0)
        else:
            k = self.outputs
            predicted = scores > 0  # σ(s) > ½
            truth = y > 0.5
            right = predicted == truth
            rest[:k] += right.sum(axis=0)
            rest[k] += np.count_nonzero(right.all(axis=1))
            rest[k + 1] += np.count_nonzero(predicted & truth)  # true positives
            rest[k + 2] += np.count_nonzero(predicted & ~truth)  # false positives
            rest[k + 3] += np.count_nonzero(~predicted & truth)  # false negatives

    def _units(self, values):
        values = np.asarray(values, np.float64)
        return values if self.mean is None else values * self.std + self.mean

    def metrics(self):
        """{metric name: value} of everything counted so far (0 samples: the loss and the rest are 0)."""
        n = max(self.sums[0], 1.0)
        rest, k = self.sums[2:], self.outputs
        weighted = self.weighted
        out = {"loss": self.sums[1] / n if weighted is None else (weighted[0] / weighted[1]).sum()}
        if self.task == "classification":
            out["accuracy"] = rest[0] / n
        elif self.task == "regression":
            sse, sae, r2 = self._regression()
            out.update(rmse=np.sqrt(sse.sum() / (n * k)), mae=sae.sum() / (n * k), r2=r2.mean())
        else:
            tp, fp, fn = rest[k + 1 : k + 4]
            out.update(
                accuracy=rest[:k].sum() / (n * k),
                exact_match=rest[k] / n,
                micro_f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0,
            )
        return {name: float(value) for name, value in out.items()}

    def per_output(self):
        """Per target (regression: rmse, mae, r2) or per attribute (accuracy): lists of K values."""
        n, rest, k = max(self.sums[0], 1.0), self.sums[2:], self.outputs
        if self.task == "regression":
            sse, sae, r2 = self._regression()
            return {"rmse": np.sqrt(sse / n).tolist(), "mae": (sae / n).tolist(), "r2": r2.tolist()}
        if self.task == "attributes":
            return {"accuracy": (rest[:k] / n).tolist()}
        return {}

    def _regression(self):
        """Per target: the squared and absolute residuals' sums and R² (0 for a constant target)."""
        n, rest, k = max(self.sums[0], 1.0), self.sums[2:], self.outputs
        sse, sae, total, squares = rest[:k], rest[k : 2 * k], rest[2 * k : 3 * k], rest[3 * k :]
        spread = squares - total * total / n  # Σ (t − mean t)²
        return sse, sae, np.where(spread > 0, 1 - sse / np.where(spread > 0, spread, 1), 0.0)

    def state(self):
        """The running sums but the sample count, as a list of floats (JSON), for an interrupted epoch's
        checkpoint: [loss sum, correct count] for classification, as checkpoints have always held."""
        return [int(v) if v.is_integer() else v for v in self.sums[1:].tolist()]  # counts as whole numbers

    def restore(self, sums, samples):
        """Continue from `state()`'s list after `samples` samples; ValueError for a list of another length."""
        if len(sums) != len(self.sums) - 1:
            raise ValueError(f"expected {len(self.sums) - 1} running sums for {self.task}, got {len(sums)}")
        self.sums[0], self.sums[1:] = samples, sums
        return self
