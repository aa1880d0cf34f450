"""Seed lists as people write them: '0-4', '0,2,5', '3', or a list [0, 1, 2]; shared by seed studies and sweeps."""

import re

from nncli.errors import NncliError

SPEC_HELP = "a seed (3), a range (0-4) or a comma list (0,2,5) of non-negative integers"


class SeedsError(NncliError):
    """A seed list that is not distinct non-negative integers."""


def parse_seeds(spec, option="seeds"):
    """'0-4' → [0, 1, 2, 3, 4]; '0,2,5' → [0, 2, 5]; '3' → [3]; ranges and lists combine ('0-2,7').

    A list such as [0, 1, 2] (a sweep file's `seeds`) reads as its comma form. Errors name `option`, the place the
    spec came from: this argument by default, a front end passes its own (a command-line flag, a file's key).
    """
    if isinstance(spec, list):
        spec = ",".join(map(str, spec))
    if not str(spec).strip():
        raise SeedsError(f"{option}: no seeds given; give {SPEC_HELP}")
    seeds = []
    for part in str(spec).split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            where = f"{part!r} in {spec!r}" if part != str(spec).strip() else repr(part)
            raise SeedsError(f"{option}: {where} is not {SPEC_HELP}")
        lo, hi = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if hi < lo:
            raise SeedsError(f"{option}: the range {part!r} runs backwards; write it low-high, e.g. {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise SeedsError(f"{option}: seed {repeated[0]} is listed twice in {spec!r}; each seed runs once")
    return seeds
