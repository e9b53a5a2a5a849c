"""Pre-generated, concealed permuted-block allocation lists (pure Python, stdlib only).

Rules and where they come from
------------------------------
* **Permuted blocks.**  Every block is an exact permutation of the allocation ratio scaled
  to the block size (e.g. a 1:1 block of 4 holds two "A" and two "B" in random order), so
  the arms are exactly balanced at the end of every block and never drift further apart
  than one block allows.  ICH E9 (Statistical Principles for Clinical Trials, 1998),
  section 2.3.2, recommends blocking to keep group sizes close at any point of
  recruitment; see also Schulz & Grimes, "Generation of allocation sequences in randomised
  trials: chance, not choice", Lancet 2002;359:515-519.
* **Block sizes are multiples of the ratio sum.**  A block of any other size cannot hold
  the ratio exactly, so such sizes are refused with a ``ValueError``.
* **Varied (random) block sizes.**  With a single fixed block size a site that knows it
  can guess the last allocation(s) of every block.  When several sizes are given, each
  block's size is drawn at random from them, which makes the end of a block
  unpredictable.  ICH E9 2.3.2 (paraphrased: blocks short enough to limit imbalance but
  long enough to avoid predictability towards the end of a block; staff should be blind
  to the block length, and using two or more block lengths chosen at random for each
  block serves the same purpose); Schulz & Grimes,
  "Allocation concealment in randomised trials: defending against deciphering",
  Lancet 2002;359:614-618.
* **Pre-generated and concealed.**  The list is generated once, before enrolment, and
  stored; the EDC reveals a slot only when a subject is randomised.  The seed lets the
  unblinded statistician reproduce the list for verification.

Deterministic seeding
---------------------
Each list uses its own ``random.Random(f"{seed}:{stratum}")``.  ``random.Random`` seeded
with a ``str`` uses seeding "version 2" (the default since Python 3.2): the string is
encoded to bytes and extended with its SHA-512 digest to form the integer seed.  It does
*not* use ``hash()``, so the result is independent of ``PYTHONHASHSEED`` and identical
across runs and processes (checked by a unit test that runs two interpreters with
different hash seeds).  Python only guarantees cross-*version* reproducibility for
``random()`` itself, not for ``shuffle``/``choice``; this is why the generated list is
stored, and regeneration is a verification step done on the same Python version.

Arm names are sorted before a block is filled, so the list depends on the ratio's
content, not on the insertion order of the mapping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from itertools import groupby
from random import Random

__all__ = [
    "Slot",
    "extend_list",
    "generate_list",
    "generate_stratified",
    "is_block_balanced",
    "max_imbalance",
    "ratio_sum",
]


@dataclass(frozen=True)
class Slot:
    """One concealed allocation.

    ``sequence`` is 1-based within the stratum's list; ``block_number`` is 1-based too.
    """

    stratum: str
    sequence: int
    block_number: int
    block_size: int
    arm: str


def _check_ratio(arms_ratio: Mapping[str, int]) -> dict[str, int]:
    if not arms_ratio:
        raise ValueError("arms_ratio must name at least one arm")
    checked: dict[str, int] = {}
    for arm, weight in arms_ratio.items():
        if not isinstance(arm, str) or not arm:
            raise ValueError(f"arm names must be non-empty strings, got {arm!r}")
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise ValueError(f"ratio for arm {arm!r} must be a positive integer, got {weight!r}")
        checked[arm] = weight
    return checked


def ratio_sum(arms_ratio: Mapping[str, int]) -> int:
    """Sum of the allocation ratio (e.g. 2 for 1:1, 3 for 1:1:1 or 2:1)."""
    return sum(_check_ratio(arms_ratio).values())


def _ratio_text(ratio: Mapping[str, int]) -> str:
    return ":".join(str(ratio[a]) for a in sorted(ratio)) + f" ({', '.join(sorted(ratio))})"


def _check_block_sizes(ratio: Mapping[str, int], block_sizes: Sequence[int]) -> list[int]:
    if isinstance(block_sizes, int | str) or not block_sizes:
        raise ValueError("block_sizes must be a non-empty sequence of integers")
    total = sum(ratio.values())
    for size in block_sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"block sizes must be positive integers, got {size!r}")
        if size % total:
            raise ValueError(
                f"block size {size} is not a multiple of the allocation ratio sum {total} "
                f"for ratio {_ratio_text(ratio)}; every block must hold the ratio exactly, "
                f"so use multiples of {total}"
            )
    # Sorted and de-duplicated so the list does not depend on how the sizes were listed.
    return sorted(set(block_sizes))


def generate_list(
    arms_ratio: Mapping[str, int],
    block_sizes: Sequence[int],
    n_blocks: int,
    seed: int | str,
    stratum: str = "",
) -> list[Slot]:
    """Generate one permuted-block allocation list.

    * ``arms_ratio`` -- e.g. ``{"RPI": 1, "RP": 1}`` (seed 002, 1:1) or three arms at
      1:1:1 (seed 004).
    * ``block_sizes`` -- each must be a multiple of the ratio sum (else ``ValueError``).
      With several sizes each block's size is drawn at random from them (ICH E9 2.3.2;
      Schulz & Grimes 2002) -- see the module docstring.
    * ``n_blocks`` -- number of blocks; the list holds the sum of the drawn block sizes.
    * ``seed``/``stratum`` -- the generator is ``random.Random(f"{seed}:{stratum}")``:
      same arguments give the same list in any process (hash-seed independent).
    """
    ratio = _check_ratio(arms_ratio)
    sizes = _check_block_sizes(ratio, block_sizes)
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | str):
        raise ValueError(f"seed must be an int or a str, got {seed!r}")
    if not isinstance(stratum, str):
        raise ValueError(f"stratum must be a str, got {stratum!r}")

    rng = Random(f"{seed}:{stratum}")
    total = sum(ratio.values())
    arms = sorted(ratio)
    slots: list[Slot] = []
    for block_number in range(1, n_blocks + 1):
        size = rng.choice(sizes)
        multiplier = size // total
        block = [arm for arm in arms for _ in range(ratio[arm] * multiplier)]
        rng.shuffle(block)
        for arm in block:
            slots.append(Slot(stratum, len(slots) + 1, block_number, size, arm))
    return slots


def extend_list(
    arms_ratio: Mapping[str, int],
    block_sizes: Sequence[int],
    existing: Sequence[Slot],
    n_blocks: int,
    seed: int | str,
    stratum: str = "",
) -> list[Slot]:
    """``n_blocks`` new blocks continuing a list from the same seeded generator.

    The generator draws each block's size and permutation in turn, so the list of
    ``b + n_blocks`` blocks starts with the list of ``b`` blocks: the new blocks are what the
    generator draws next, as if the list had been generated longer in the first place (the
    statistician reproduces the extended list from the seed alone).  ``existing`` must be
    that first part (same sequence, blocks, sizes and arms); otherwise ``ValueError`` says
    where it differs (a list made with another ratio, block sizes or seed is not extended).
    """
    if isinstance(n_blocks, bool) or not isinstance(n_blocks, int) or n_blocks < 1:
        raise ValueError(f"n_blocks must be a positive integer, got {n_blocks!r}")
    have = max((s.block_number for s in existing), default=0)
    longer = generate_list(arms_ratio, block_sizes, have + n_blocks, seed, stratum)
    if len(existing) != sum(1 for s in longer if s.block_number <= have):
        raise ValueError(f"the stored list holds {len(existing)} slots in {have} blocks, not "
                         "whole blocks of the generator")
    for stored, regenerated in zip(sorted(existing, key=lambda s: s.sequence), longer,
                                   strict=False):
        if stored != regenerated:
            raise ValueError(
                f"slot {stored.sequence} of the stored list ({stored.arm}, block "
                f"{stored.block_number} of {stored.block_size}) is not what the generator "
                f"gives ({regenerated.arm}, block {regenerated.block_number} of "
                f"{regenerated.block_size}): the list was made with another ratio, block "
                "sizes or seed")
    return [s for s in longer if s.block_number > have]


def generate_stratified(
    arms_ratio: Mapping[str, int],
    block_sizes: Sequence[int],
    strata: Sequence[str],
    n_blocks_per_stratum: int | Mapping[str, int],
    seed: int | str,
) -> dict[str, list[Slot]]:
    """One independent list per stratum (stratified permuted blocks, ICH E9 2.3.2).

    Each stratum's list is exactly ``generate_list(..., seed=seed, stratum=name)``: its own
    generator seeded ``f"{seed}:{name}"``, so adding, removing or re-ordering strata never
    changes another stratum's list.  ``n_blocks_per_stratum`` is an int for all strata or
    a mapping stratum -> n_blocks.  Stratum names must be non-empty and unique.
    """
    if isinstance(strata, str) or not strata:
        raise ValueError("strata must be a non-empty sequence of stratum names")
    duplicates = sorted(name for name, count in Counter(strata).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate strata: {', '.join(map(repr, duplicates))}")
    result: dict[str, list[Slot]] = {}
    for name in strata:
        if not isinstance(name, str) or not name:
            raise ValueError(f"stratum names must be non-empty strings, got {name!r}")
        if isinstance(n_blocks_per_stratum, Mapping):
            if name not in n_blocks_per_stratum:
                raise ValueError(f"n_blocks_per_stratum has no entry for stratum {name!r}")
            n_blocks = n_blocks_per_stratum[name]
        else:
            n_blocks = n_blocks_per_stratum
        result[name] = generate_list(arms_ratio, block_sizes, n_blocks, seed, stratum=name)
    return result


def _blocks(slots: Iterable[Slot]) -> list[list[Slot]]:
    ordered = sorted(slots, key=lambda s: (s.stratum, s.sequence))
    return [list(g) for _, g in groupby(ordered, key=lambda s: (s.stratum, s.block_number))]


def is_block_balanced(slots: Iterable[Slot], arms_ratio: Mapping[str, int] | None = None) -> bool:
    """True when every block is an exact permutation of the ratio scaled to its size.

    Checks, per (stratum, block_number): the block holds ``block_size`` slots with
    consecutive sequence numbers, and each arm appears ``ratio[arm] * block_size /
    ratio_sum`` times.  ``arms_ratio=None`` means equal allocation between all arms seen
    in ``slots``.
    """
    slots = list(slots)
    if arms_ratio is None:
        ratio = dict.fromkeys({s.arm for s in slots}, 1)
    else:
        ratio = _check_ratio(arms_ratio)
    total = sum(ratio.values())
    for block in _blocks(slots):
        size = block[0].block_size
        if len(block) != size or any(s.block_size != size for s in block):
            return False
        sequences = [s.sequence for s in block]
        if sequences != list(range(sequences[0], sequences[0] + size)):
            return False
        if size % total:
            return False
        expected = {arm: ratio[arm] * size // total for arm in ratio}
        if Counter(s.arm for s in block) != Counter(expected):
            return False
    return True


def max_imbalance(slots: Sequence[Slot], arms_ratio: Mapping[str, int]) -> Fraction:
    """Largest deviation from the target ratio over every prefix of ``slots``.

    For each prefix of length n (in the given order) and each arm a, the deviation is
    ``|count_a(prefix) - n * ratio[a] / ratio_sum|``; the maximum is returned as an exact
    ``Fraction``.  For a permuted-block list this never exceeds half the largest block.
    """
    ratio = _check_ratio(arms_ratio)
    total = sum(ratio.values())
    counts = dict.fromkeys(ratio, 0)
    worst = Fraction(0)
    for n, slot in enumerate(slots, start=1):
        if slot.arm not in counts:
            raise ValueError(f"slot {slot.sequence} has arm {slot.arm!r} not in the ratio")
        counts[slot.arm] += 1
        for arm, weight in ratio.items():
            deviation = abs(Fraction(counts[arm]) - Fraction(n * weight, total))
            if deviation > worst:
                worst = deviation
    return worst
