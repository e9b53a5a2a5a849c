"""Unit tests for subjects.randomization (pure Python, no Django)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pytest

from subjects.randomization import (
    Slot,
    extend_list,
    generate_list,
    generate_stratified,
    is_block_balanced,
    max_imbalance,
    ratio_sum,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Seed 002 (iNKT HCC): "randomized 1:1 to receive Regorafenib + PD-1 + iNKT (RPI) or RP".
RATIO_002 = {"RPI": 1, "RP": 1}
# Seed 004 (NCT06722105): three parallel arms, double-blind; 1:1:1.
RATIO_004 = {"MSC_M0_M3": 1, "MSC_M0_PBO_M3": 1, "PBO_M0_M3": 1}


def _blocks(slots: list[Slot]) -> dict[int, list[Slot]]:
    out: dict[int, list[Slot]] = {}
    for s in slots:
        out.setdefault(s.block_number, []).append(s)
    return out


# --- reproducibility -----------------------------------------------------------------


def test_same_seed_gives_same_list():
    a = generate_list(RATIO_002, [4, 6], 50, seed=2025)
    b = generate_list(RATIO_002, [4, 6], 50, seed=2025)
    assert a == b
    # the order in which block sizes / arms are listed does not matter
    c = generate_list({"RP": 1, "RPI": 1}, [6, 4, 6], 50, seed=2025)
    assert a == c


def test_str_and_int_seeds_are_distinct_but_each_reproducible():
    assert generate_list(RATIO_002, [4], 20, seed="abc") == generate_list(
        RATIO_002, [4], 20, seed="abc"
    )
    # seed 7 and seed "7" both become the string "7:" -> same generator, by design
    assert generate_list(RATIO_002, [4], 20, seed=7) == generate_list(RATIO_002, [4], 20, "7")


def test_different_seeds_give_different_lists():
    a = [s.arm for s in generate_list(RATIO_002, [4, 6], 50, seed=1)]
    b = [s.arm for s in generate_list(RATIO_002, [4, 6], 50, seed=2)]
    assert a != b


def test_list_is_independent_of_python_hash_seed():
    """random.Random(str) uses SHA-512 (seed version 2), not hash(): check in 2 processes."""
    code = (
        "from subjects.randomization import generate_list\n"
        "print([(s.block_size, s.arm) for s in generate_list("
        "{'A': 1, 'B': 1}, [2, 4, 6], 30, seed='trial-002', stratum='site-1')])\n"
    )
    outputs = []
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.append(proc.stdout)
    assert outputs[0] == outputs[1]
    here = [
        (s.block_size, s.arm)
        for s in generate_list({"A": 1, "B": 1}, [2, 4, 6], 30, seed="trial-002", stratum="site-1")
    ]
    assert outputs[0].strip() == str(here)


# --- structure and balance -----------------------------------------------------------


def test_slot_numbering_and_fields():
    slots = generate_list(RATIO_002, [4], 3, seed="x", stratum="BCLC-C")
    # 3 blocks of 4 -> 12 slots, sequence 1..12, blocks 1,1,1,1,2,2,2,2,3,3,3,3
    assert [s.sequence for s in slots] == list(range(1, 13))
    assert [s.block_number for s in slots] == [1] * 4 + [2] * 4 + [3] * 4
    assert {s.block_size for s in slots} == {4}
    assert {s.stratum for s in slots} == {"BCLC-C"}
    assert {s.arm for s in slots} == {"RPI", "RP"}


def test_every_block_is_exactly_balanced_1_to_1_seed_002():
    slots = generate_list(RATIO_002, [4, 6, 8], 200, seed="002")
    for number, block in _blocks(slots).items():
        size = block[0].block_size
        assert len(block) == size, number
        # 1:1 -> each arm exactly size/2 times in every block
        assert Counter(s.arm for s in block) == {"RPI": size // 2, "RP": size // 2}
    assert is_block_balanced(slots, RATIO_002)
    assert is_block_balanced(slots)  # None -> equal allocation between arms seen


def test_every_block_is_exactly_balanced_1_to_1_to_1_seed_004():
    slots = generate_list(RATIO_004, [3, 6], 100, seed="004")
    assert {s.arm for s in slots} == set(RATIO_004)
    for block in _blocks(slots).values():
        size = block[0].block_size
        assert size in (3, 6)
        assert Counter(s.arm for s in block) == dict.fromkeys(RATIO_004, size // 3)
    assert is_block_balanced(slots, RATIO_004)


def test_unequal_ratio_2_to_1_blocks_hold_the_ratio():
    ratio = {"active": 2, "placebo": 1}
    slots = generate_list(ratio, [3, 6], 60, seed=9)
    for block in _blocks(slots).values():
        size = block[0].block_size
        # 2:1 in a block of 6 -> 4 active + 2 placebo; block of 3 -> 2 + 1
        assert Counter(s.arm for s in block) == {"active": 2 * size // 3, "placebo": size // 3}
    assert is_block_balanced(slots, ratio)
    # without the ratio the helper assumes 1:1, which a 2:1 list is not
    assert not is_block_balanced(slots)


def test_varied_block_sizes_are_actually_varied():
    slots = generate_list(RATIO_002, [4, 6], 200, seed="002")
    sizes = Counter(block[0].block_size for block in _blocks(slots).values())
    # 200 draws from {4, 6}: both sizes must occur (P(all one size) = 2 * 2**-200)
    assert set(sizes) == {4, 6}
    assert sum(sizes.values()) == 200
    assert len(slots) == 4 * sizes[4] + 6 * sizes[6]


def test_single_block_size_gives_fixed_blocks():
    slots = generate_list(RATIO_004, [6], 10, seed=1)
    assert len(slots) == 60
    assert {s.block_size for s in slots} == {6}


@pytest.mark.parametrize(
    ("ratio", "sizes"),
    [
        (RATIO_002, [4, 6]),
        (RATIO_002, [2, 4, 8]),
        (RATIO_004, [3, 6]),
        (RATIO_004, [6, 9]),
        ({"A": 2, "B": 1}, [3, 6]),
    ],
)
def test_10000_allocations_stay_within_half_a_block_of_target(ratio, sizes):
    """Walk one long list: for every prefix n and arm a,
    |count_a - n * ratio_a / sum| <= max_block_size / 2."""
    n_blocks = 10_000 // min(sizes) + 1  # enough blocks for >= 10,000 slots
    slots = generate_list(ratio, sizes, n_blocks, seed="sim-10000")[:10_000]
    assert len(slots) == 10_000
    bound = Fraction(max(sizes), 2)
    assert max_imbalance(slots, ratio) <= bound
    # same check written out directly, prefix by prefix
    total = sum(ratio.values())
    counts = dict.fromkeys(ratio, 0)
    seen_in_block = Counter()
    block_ends = 0
    for n, slot in enumerate(slots, start=1):
        counts[slot.arm] += 1
        for arm, weight in ratio.items():
            assert abs(Fraction(counts[arm]) - Fraction(n * weight, total)) <= bound
        seen_in_block[slot.block_number] += 1
        if seen_in_block[slot.block_number] == slot.block_size:
            # end of a block: exactly on target, count_a == n * ratio_a / sum
            assert counts == {a: n * w // total for a, w in ratio.items()}
            block_ends += 1
    assert block_ends >= 10_000 // max(sizes)


def test_max_imbalance_by_hand():
    def mk(arms):
        return [Slot("", i, 1, len(arms), a) for i, a in enumerate(arms, start=1)]

    # A A B B: prefix 1 -> |1 - 0.5| = 0.5; prefix 2 -> |2 - 1| = 1; prefix 3 -> |2-1.5|=0.5
    assert max_imbalance(mk("AABB"), {"A": 1, "B": 1}) == 1
    # A B A B: deviation 0.5 after every odd prefix, 0 after even
    assert max_imbalance(mk("ABAB"), {"A": 1, "B": 1}) == Fraction(1, 2)
    # 2:1, sequence A A B: prefix1 |1-2/3|=1/3, prefix2 |2-4/3|=2/3, prefix3 0
    assert max_imbalance(mk("AAB"), {"A": 2, "B": 1}) == Fraction(2, 3)
    with pytest.raises(ValueError, match="not in the ratio"):
        max_imbalance(mk("AC"), {"A": 1, "B": 1})


def test_is_block_balanced_detects_tampering():
    slots = generate_list(RATIO_002, [4], 5, seed=3)
    assert is_block_balanced(slots, RATIO_002)
    first = slots[0]
    flipped = Slot(
        first.stratum,
        first.sequence,
        first.block_number,
        first.block_size,
        "RP" if first.arm == "RPI" else "RPI",
    )
    assert not is_block_balanced([flipped, *slots[1:]], RATIO_002)
    assert not is_block_balanced(slots[1:], RATIO_002)  # block 1 now incomplete


# --- validation ----------------------------------------------------------------------


def test_block_size_not_multiple_of_ratio_sum_is_refused():
    with pytest.raises(
        ValueError,
        match=r"block size 4 is not a multiple of the allocation "
        r"ratio sum 3",
    ):
        generate_list(RATIO_004, [3, 4], 10, seed=1)
    with pytest.raises(ValueError, match="block size 5 is not a multiple .* sum 2"):
        generate_list(RATIO_002, [5], 10, seed=1)
    with pytest.raises(ValueError, match="use multiples of 3"):
        generate_list({"A": 2, "B": 1}, [4], 10, seed=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arms_ratio": {}}, "at least one arm"),
        ({"arms_ratio": {"A": 0, "B": 1}}, "positive integer"),
        ({"arms_ratio": {"A": 1.5, "B": 1}}, "positive integer"),
        ({"block_sizes": []}, "non-empty"),
        ({"block_sizes": [0]}, "positive integers"),
        ({"n_blocks": 0}, "n_blocks"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_invalid_arguments_are_refused(kwargs, message):
    args = {"arms_ratio": RATIO_002, "block_sizes": [4], "n_blocks": 2, "seed": 1}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate_list(**args)


def test_ratio_sum():
    assert ratio_sum(RATIO_002) == 2
    assert ratio_sum(RATIO_004) == 3
    assert ratio_sum({"A": 2, "B": 1}) == 3


# --- stratified ----------------------------------------------------------------------


def test_stratified_lists_are_reproducible_and_match_single_stratum_lists():
    strata = ["site-1", "site-2", "site-3"]
    a = generate_stratified(RATIO_002, [4, 6], strata, 20, seed="002")
    b = generate_stratified(RATIO_002, [4, 6], strata, 20, seed="002")
    assert a == b
    assert list(a) == strata
    for name in strata:
        assert a[name] == generate_list(RATIO_002, [4, 6], 20, seed="002", stratum=name)
        assert {s.stratum for s in a[name]} == {name}
        assert a[name][0].sequence == 1
        assert is_block_balanced(a[name], RATIO_002)


def test_stratified_lists_are_independent_per_stratum():
    full = generate_stratified(RATIO_004, [3, 6], ["A", "B", "C"], 30, seed=4)
    # dropping / re-ordering strata leaves each remaining stratum's list unchanged
    partial = generate_stratified(RATIO_004, [3, 6], ["C", "A"], 30, seed=4)
    assert partial["A"] == full["A"]
    assert partial["C"] == full["C"]
    # strata do not share a sequence: the arm orders differ between strata
    arms = {k: [s.arm for s in v] for k, v in full.items()}
    assert arms["A"] != arms["B"] != arms["C"] != arms["A"]


def test_stratified_per_stratum_block_counts_and_validation():
    lists = generate_stratified(RATIO_002, [4], ["x", "y"], {"x": 2, "y": 5}, seed=1)
    assert len(lists["x"]) == 8 and len(lists["y"]) == 20
    with pytest.raises(ValueError, match="duplicate strata"):
        generate_stratified(RATIO_002, [4], ["x", "x"], 2, seed=1)
    with pytest.raises(ValueError, match="no entry for stratum 'y'"):
        generate_stratified(RATIO_002, [4], ["x", "y"], {"x": 2}, seed=1)
    with pytest.raises(ValueError, match="non-empty"):
        generate_stratified(RATIO_002, [4], ["x", ""], 2, seed=1)
    with pytest.raises(ValueError, match="not a multiple"):
        generate_stratified(RATIO_002, [3], ["x"], 2, seed=1)


def test_extend_list_continues_the_same_seeded_generator():
    """New blocks are what the generator draws next: the list generated longer."""
    ratio, sizes = {"A": 1, "B": 1}, [4, 8]
    stored = generate_list(ratio, sizes, 3, "secret", "S1")
    new = extend_list(ratio, sizes, stored, 2, "secret", "S1")
    assert stored + new == generate_list(ratio, sizes, 5, "secret", "S1")
    assert [s.block_number for s in new][:1] == [4] and is_block_balanced(stored + new, ratio)


@pytest.mark.parametrize("change", [{"seed": "other"}, {"ratio": {"A": 2, "B": 1}},
                                    {"sizes": [6]}, {"drop": True}])
def test_extend_list_refuses_a_list_the_generator_did_not_make(change):
    ratio, sizes, seed = {"A": 1, "B": 1}, [6, 12], "secret"
    stored = generate_list(ratio, sizes, 2, seed)
    if change.pop("drop", False):
        stored = stored[:-1]
    with pytest.raises(ValueError, match="stored list"):
        extend_list(change.get("ratio", ratio), change.get("sizes", sizes), stored, 1,
                    change.get("seed", seed))
