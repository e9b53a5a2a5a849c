"""Export benchmark (not a test): sponsor exports against ``COPY`` of the same SELECT.

Usage::

    .venv/bin/python bench/bench_exports.py

Database and synthetic trial: ``bench/common.py`` (2,000 subjects at 10 sites, 100,000 AEs).
Every export runs the product's own path (``exports.engine.Source``: count and ``WITH HOLD``
cursor in one snapshot, mapped 2,000 rows at a time, then ``exports.services``' writer for
the format, SHA-256 of every byte), bytes discarded. The floor is ``COPY (<the export's
SELECT>) TO STDOUT (FORMAT csv, HEADER)`` read through psycopg. Export and floor alternate
(``common.interleaved``, 3 rounds of 2 pairs). Memory: ``tracemalloc`` peak of the same
export for one site (10,000 rows) and for every site (100,000 rows); for XLSX, whose writer
allocates in Rust where ``tracemalloc`` does not see, also the growth of the resident set of a
fresh process over the export (``VmHWM`` after resetting it through ``/proc/self/clear_refs``,
less ``VmRSS`` before; a 10,000-row export first warms the process).

* SDTM AE as CSV, Dataset-JSON 1.1 (JSON and NDJSON) and SAS XPORT v5 (also in bench_xpt.py,
  with resident memory);
* the AE listing as XLSX (rust_xlsxwriter through rustpy-xlsxwriter, constant memory),
  against COPY of the listing's SELECT.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402


def export_spec(dataset: str, fmt: str, site_code: str | None = None):
    from exports.engine import Spec
    from subjects.models import Site
    from trials.models import Trial

    trial = Trial.objects.get(registry_id=common.MAIN)
    sites = Site.objects.filter(trial=trial).order_by("pk")
    if site_code is not None:
        sites = sites.filter(code=site_code)
    return Spec(dataset=dataset, fmt=fmt, trial_id=trial.pk,
                site_ids=tuple(sites.values_list("pk", flat=True)), unblinded=True)


def run_export(spec) -> int:
    """The export's bytes as a streamed or background export makes them, discarded; the
    number of rows."""
    from exports import services, writers
    from exports.models import ExportRecord

    tally = writers.Tally()
    source = services.open_source(spec)
    for _ in services._bytes(ExportRecord(format=spec.fmt), source, tally):
        pass
    return tally.rows


def run_copy_floor(spec) -> int:
    """``COPY (<the export's SELECT>) TO STDOUT (FORMAT csv, HEADER)``, bytes discarded."""
    import psycopg
    from django.db import connection

    from exports import engine

    plan = engine.plan(spec)
    connection.ensure_connection()
    raw = connection.connection
    literal = psycopg.ClientCursor(raw).mogrify(plan.sql, {**spec.params, **plan.params})
    size = 0
    with raw.cursor() as cursor, cursor.copy(
            f"COPY ({literal}) TO STDOUT (FORMAT csv, HEADER)") as copy:
        for block in copy:
            size += len(block)
    return size


def peak_memory(spec) -> tuple[int, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    rows = run_export(spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rows, peak


def _status(field: str) -> int:
    """A ``/proc/self/status`` size in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def resident_growth(dataset: str, fmt: str, site_code: str | None = None
                    ) -> tuple[int, int] | None:
    """Rows, and KiB the resident set of a fresh process grew to at most over the export
    (None where ``/proc/self/clear_refs`` may not be written)."""
    done = subprocess.run([sys.executable, __file__, "--resident", dataset, fmt,
                           site_code or ""], capture_output=True, text=True, check=True)
    rows, growth = done.stdout.split()[-2:]
    return None if growth == "-" else (int(rows), int(growth))


def _resident_child(dataset: str, fmt: str, site_code: str) -> None:
    import django

    django.setup()
    run_export(export_spec(dataset, fmt, "S01"))  # imports and caches in place
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    except OSError:
        print(0, "-")
        return
    before = _status("VmRSS")
    rows = run_export(export_spec(dataset, fmt, site_code or None))
    print(rows, _status("VmHWM") - before)


def figures(only: str = "") -> list[common.Figure]:
    from exports.models import Dataset

    measures = [("SDTM AE CSV, 100k rows (export / COPY)", Dataset.SDTM_AE, "csv", 3.0),
                ("SDTM AE Dataset-JSON, 100k rows (export / COPY)", Dataset.SDTM_AE, "json", 3.0),
                ("SDTM AE Dataset-NDJSON, 100k rows (export / COPY)", Dataset.SDTM_AE, "ndjson",
                 3.0),
                ("SDTM AE SAS XPORT v5, 100k rows (export / COPY)", Dataset.SDTM_AE, "xpt", 8.0),
                ("AE listing XLSX, 100k rows (export / COPY)", Dataset.AE_LISTING, "xlsx", 3.0)]
    out = []
    for label, dataset, fmt, goal in measures:
        if only not in label:
            continue
        spec = export_spec(dataset, fmt)
        rows = run_export(spec)
        assert rows == common.N_AES, rows
        out.append(common.interleaved(label, lambda s=spec: run_export(s),
                                      lambda s=spec: run_copy_floor(s), rounds=3, per_round=2,
                                      goal=goal, unit="s"))
        small_rows, small = peak_memory(export_spec(dataset, fmt, "S01"))
        big_rows, big = peak_memory(spec)
        out.append(common.Figure(
            f"  peak memory, {big_rows // 1000}k vs {small_rows // 1000}k rows ({fmt})",
            big / 2**20, small / 2**20, "MiB", big / small, 1.5,
            "flat: the ratio stays near 1 for 10x the rows"))
        if fmt == "xlsx" and (small := resident_growth(dataset, fmt, "S01")) and (
                big := resident_growth(dataset, fmt)):
            out.append(common.Figure(
                f"  resident set growth, {big[0] // 1000}k vs {small[0] // 1000}k rows ({fmt})",
                big[1] / 1024, small[1] / 1024, "MiB", big[1] / max(small[1], 1), None,
                "Rust allocations included; a few MiB of allocator noise, so no ratio goal"))
    return out


def main() -> None:
    common.prepare()
    started = time.perf_counter()
    common.print_figures(figures(sys.argv[1] if len(sys.argv) > 1 else ""))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--resident"]:
        _resident_child(*sys.argv[2:5])
    else:
        main()
