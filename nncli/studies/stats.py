"""Mean ± std over seeds, as seed studies and sweep trials report them."""

import math


def mean_and_std(values):
    """Mean and sample standard deviation (n − 1) of a non-empty list; the std is None for a single value.

    None, not 0.0: one seed says nothing about the spread, and a table should not claim ± 0.0000.
    """
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
