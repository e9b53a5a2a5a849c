"""SAS XPORT v5 export: time and peak memory at 10,000 and 100,000 rows (not a test).

Usage::

    .venv/bin/python bench/bench_xpt.py

Uses the database and synthetic trial of ``bench_exports.py`` (``BENCH_DATABASE_URL``, created,
migrated and filled once: 100,000 AEs at 10 sites of 10,000 AEs each). In one run, for the
SDTM AE dataset of one site (10,000 rows) and of all sites (100,000 rows):

* time: the XPT export as the API produces it (``exports.engine`` + ``exports.writers
  .write_xpt``, file written to a temporary directory), best of 3, against the floor
  ``COPY (<the same SELECT>) TO STDOUT (FORMAT csv)`` of the same rows, best of 3;
* peak memory of the XPT export and of the COPY floor, measured twice: Python allocations
  (``tracemalloc`` peak, which sees pandas/NumPy buffers) and growth of the resident set
  (``VmHWM`` after resetting it through ``/proc/self/clear_refs``, which also sees memory
  allocated in C by ReadStat and libpq).
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_exports  # noqa: E402  (sets DATABASE_URL to the bench database)
import django  # noqa: E402


def _status(field: str) -> int:
    """A ``/proc/self/status`` size in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_growth(work) -> int | None:
    """KiB the resident set grew to at most while ``work()`` ran (None: not measurable)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    before = _status("VmRSS")
    work()
    return _status("VmHWM") - before


def python_peak(work) -> int:
    """KiB of the ``tracemalloc`` peak while ``work()`` ran."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        work()
        return tracemalloc.get_traced_memory()[1] // 1024
    finally:
        tracemalloc.stop()


def measure(label: str, spec) -> tuple[int, dict]:
    def xpt():
        return bench_exports.run_export(spec, "xpt")

    def floor():
        return bench_exports.run_copy_floor(spec)

    xpt()  # warm caches
    seconds, rows, size = min(xpt() for _ in range(3))
    floor_seconds, _ = min(floor() for _ in range(3))
    print(f"{label}: {rows:,} rows, XPT {size / 1e6:.1f} MB in {seconds:.2f} s; "
          f"COPY floor {floor_seconds:.2f} s; XPT / COPY = {seconds / floor_seconds:.2f}x")
    memory = {"xpt": (python_peak(xpt), rss_growth(xpt)),
              "copy": (python_peak(floor), rss_growth(floor))}
    for name, (peak, rss) in memory.items():
        shown = "n/a" if rss is None else f"{rss:,} KiB"
        print(f"    {name}: Python peak {peak:,} KiB, resident set growth {shown}")
    return rows, memory


def main() -> None:
    bench_exports.ensure_database()
    django.setup()
    from django.core.management import call_command

    from adverse_events import ctcae
    from subjects.models import Site

    call_command("migrate", verbosity=0)
    ctcae.load()
    call_command("seed_protocols", verbosity=0)
    started = time.perf_counter()
    bench_exports.generate()
    print(f"data ready in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs")
    one = Site.objects.get(trial__registry_id=bench_exports.MAIN, code="S01").pk
    small_rows, small = measure("one site", bench_exports.export_spec([one]))
    big_rows, big = measure("all sites", bench_exports.export_spec())
    factor = big_rows / small_rows
    for name in ("xpt", "copy"):
        (small_peak, small_rss), (big_peak, big_rss) = small[name], big[name]
        rss = ("n/a" if small_rss is None or big_rss is None
               else f"{big_rss / max(small_rss, 1):.2f}")
        print(f"{name}: x{factor:.0f} rows -> Python peak x{big_peak / max(small_peak, 1):.2f}, "
              f"resident set growth x{rss}")


if __name__ == "__main__":
    main()
