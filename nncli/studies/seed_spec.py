"""Seed lists as people write them: '0-4', '0,2,5', '3', or a list [0, 1, 2]; shared by seed studies and sweeps.

Bounded: at most MAX_SEEDS seeds, each within the config's seed range (0 to 2**63 - 1), read in time linear in the
spec's length, so a typo such as 0-1000000000000 is refused at once instead of filling memory.
"""

import re

from nncli.config import Config
from nncli.errors import NncliError

MAX_SEEDS = 1000
MAX_SEED = next(m.le for m in Config.model_fields["seed"].metadata if getattr(m, "le", None) is not None)
SPEC_HELP = "a seed (3), a range (0-4) or a comma list (0,2,5) of non-negative integers"


class SeedsError(NncliError):
    """A seed list that is not distinct non-negative integers."""


def _seed(text, option):
    """A seed's digits as an int, refused beyond the config's range before converting (no 5000-digit parse)."""
    if len(text.lstrip("0")) > len(str(MAX_SEED)) or int(text) > MAX_SEED:
        shown = text if len(text) <= 30 else f"{text[:12]}…({len(text)} digits)"
        raise SeedsError(f"{option}: seed {shown} is out of range; a seed is from 0 to 2**63 - 1 ({MAX_SEED})")
    return int(text)


def _too_many(option, count):
    return SeedsError(f"{option}: {count} seeds is more than {MAX_SEEDS}, the most one study or sweep trains")


def _as_text(spec, option):
    """A list such as [0, 1, 2] (a sweep file's `seeds`) as its comma form; its items must be whole numbers."""
    if not isinstance(spec, list):
        return str(spec)
    if len(spec) > MAX_SEEDS:
        raise _too_many(option, len(spec))
    for item in spec:
        if isinstance(item, bool) or not isinstance(item, int):
            raise SeedsError(f"{option}: {item!r} in the list is not a seed; give {SPEC_HELP}")
        if not 0 <= item <= MAX_SEED:
            shown = item if item.bit_length() < 100 else f"of {item.bit_length()} bits"
            raise SeedsError(f"{option}: seed {shown} is out of range; a seed is from 0 to 2**63 - 1 ({MAX_SEED})")
    return ",".join(map(str, spec))


def parse_seeds(spec, option="seeds"):
    """'0-4' → [0, 1, 2, 3, 4]; '0,2,5' → [0, 2, 5]; '3' → [3]; ranges and lists combine ('0-2,7').

    Errors name `option`, the place the spec came from: this argument by default, a front end passes its own (a
    command-line flag, a file's key). At most MAX_SEEDS seeds, each at most MAX_SEED, none listed twice.
    """
    spec = _as_text(spec, option)
    if not spec.strip():
        raise SeedsError(f"{option}: no seeds given; give {SPEC_HELP}")
    shown = repr(spec) if len(spec) <= 80 else "the list"
    seeds, seen = [], set()
    for part in spec.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            where = f"{part[:40]!r} in {shown}" if part != spec.strip() else repr(part[:40])
            raise SeedsError(f"{option}: {where} is not {SPEC_HELP}")
        lo = _seed(match[1], option)
        hi = _seed(match[2], option) if match[2] is not None else lo
        if hi < lo:
            raise SeedsError(f"{option}: the range {part!r} runs backwards; write it low-high, e.g. {hi}-{lo}")
        if len(seeds) + hi - lo + 1 > MAX_SEEDS:
            raise _too_many(option, len(seeds) + hi - lo + 1)
        for seed in range(lo, hi + 1):
            if seed in seen:
                raise SeedsError(f"{option}: seed {seed} is listed twice in {shown}; each seed runs once")
            seen.add(seed)
            seeds.append(seed)
    return seeds
