"""Benchmark EORTC QLQ-C30 scoring: ``python bench/bench_qlq_scoring.py [N]`` (default 100000).

Generates N random forms (fixed seed, ~5% of items missing), times ``visits.qlq_c30.score``
over all of them with ``time.perf_counter`` (best of 3) and prints forms/s. No Django.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from visits.qlq_c30 import ITEM_KEYS, ITEM_MAX, score  # noqa: E402

MISSING_RATE = 0.05
SEED = 20160101


def make_forms(n: int, seed: int = SEED) -> list[dict[str, int | None]]:
    rng = random.Random(seed)
    forms = []
    for _ in range(n):
        form: dict[str, int | None] = {}
        for key in ITEM_KEYS:
            form[key] = None if rng.random() < MISSING_RATE else rng.randint(1, ITEM_MAX[key])
        forms.append(form)
    return forms


def main(argv: list[str]) -> None:
    n = int(argv[1]) if len(argv) > 1 else 100_000
    forms = make_forms(n)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for form in forms:
            score(form)
        best = min(best, time.perf_counter() - t0)
    n_sum = sum(score(f)["SUM"] is not None for f in forms)
    print(f"{n} forms, best of 3: {best:.3f} s -> {n / best:,.0f} forms/s "
          f"(SUM scored for {n_sum / n:.1%})")


if __name__ == "__main__":
    main(sys.argv)
