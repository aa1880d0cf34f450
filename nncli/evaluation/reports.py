"""The reports of a regression or attributes checkpoint on a split, in the targets' own units.

Both read the split a chunk at a time as (mean data loss, outputs (n, K), targets (n, K)) and count it into a
`nncli.nn.tally.Tally`, the same sums training reports its epochs from:
  regression  loss (on the standardized targets the net was trained on), rmse, mae, r2 overall and per target,
              and per target the quantiles of the residual predicted − true
  attributes  loss, accuracy (mean over attributes), exact_match, micro_f1, and per attribute accuracy,
              precision, recall and support (the samples where it is 1); an attribute is predicted 1 when its
              score is positive (σ(s) > ½)
"""

import numpy as np

from nncli.nn.tally import Tally

QUANTILES = (5, 25, 50, 75, 95)  # percent: the residual quantiles eval reports per target


def in_units(values, ckpt):
    """Outputs or targets (n, K) mapped back to the targets' units with the checkpoint's statistics (float64)."""
    values = np.asarray(values, np.float64)
    return values if ckpt.target_mean is None else values * ckpt.target_std + ckpt.target_mean


def regression_report(chunks, ckpt):
    """{loss, rmse, mae, r2, quantiles, per_target: [{target, rmse, mae, r2, residual_quantiles}]} of the
    (loss, outputs, targets) chunks; the residuals (n, K) are kept for their quantiles (8 bytes per value)."""
    names = list(ckpt.classes)
    tally = Tally("regression", len(names), ckpt.target_mean, ckpt.target_std)
    residuals = []
    for loss, scores, y in chunks:
        tally.add(loss, scores, y)
        residuals.append(in_units(scores, ckpt) - in_units(y, ckpt))
    residuals = np.concatenate(residuals) if residuals else np.zeros((0, len(names)))
    if len(residuals):
        quantiles = np.percentile(residuals, QUANTILES, axis=0).T.tolist()  # (K, len(QUANTILES))
    else:
        quantiles = [[None] * len(QUANTILES) for _ in names]
    per = tally.per_output()
    return {
        **tally.metrics(),
        "quantiles": [f"{q}%" for q in QUANTILES],
        "per_target": [
            {
                "target": name,
                "rmse": per["rmse"][k],
                "mae": per["mae"][k],
                "r2": per["r2"][k],
                "residual_quantiles": dict(zip((f"{q}%" for q in QUANTILES), quantiles[k])),
            }
            for k, name in enumerate(names)
        ],
    }


def attributes_report(chunks, ckpt):
    """{loss, accuracy, exact_match, micro_f1, per_attribute: [{attribute, accuracy, precision, recall,
    support}]} of the (loss, scores, 0/1 targets) chunks."""
    names = list(ckpt.classes)
    tally = Tally("attributes", len(names))
    counts = np.zeros((4, len(names)), np.int64)  # true positives, false positives, false negatives, true negatives
    for loss, scores, y in chunks:
        tally.add(loss, scores, y)
        predicted, truth = scores > 0, y > 0.5
        for row, hit in enumerate((predicted & truth, predicted & ~truth, ~predicted & truth, ~predicted & ~truth)):
            counts[row] += hit.sum(axis=0)
    tp, fp, fn, tn = counts.astype(np.float64)
    n = max(int(counts[:, 0].sum()), 1)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=tp + fn > 0)
    return {
        **tally.metrics(),
        "per_attribute": [
            {
                "attribute": name,
                "accuracy": float((tp[k] + tn[k]) / n),
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "support": int(tp[k] + fn[k]),
            }
            for k, name in enumerate(names)
        ],
    }
