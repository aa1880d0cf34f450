"""Weight initializations and their registry `INITS` (the config's `model.init` values).

Each entry maps (fan_in, fan_out, init_std) to the standard deviation of a zero-mean Gaussian: the course's
"he" for ReLU nets, "xavier" (Glorot) for tanh/sigmoid nets, and "normal" with a fixed small std.
"""

import math

INITS = {
    "he": lambda fan_in, fan_out, std: math.sqrt(2.0 / fan_in),  # N(0, 2/fan_in)
    "xavier": lambda fan_in, fan_out, std: math.sqrt(2.0 / (fan_in + fan_out)),  # N(0, 2/(fan_in+fan_out))
    "normal": lambda fan_in, fan_out, std: std,  # N(0, init_std²)
}


def weight_std(init, fan_in, fan_out, std=0.01):
    """Standard deviation of the initial weights of a (fan_in, fan_out) layer under the init named `init`."""
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    return INITS[init](fan_in, fan_out, std)
