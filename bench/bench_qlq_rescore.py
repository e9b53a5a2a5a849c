"""Bulk QLQ-C30 rescoring: pure scoring vs the whole ``rescore_qlq_c30`` command.

Usage: ``python bench/bench_qlq_rescore.py [N_FORMS]`` (default 100,000). Uses its own
database (``BENCH_QLQ_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/trialdesk_bench), migrates it, generates a synthetic trial
of N forms once (10 forms per subject) and refreshes the planner statistics (``ANALYZE``, as
autovacuum keeps them on a live database), then, alternately over 3 rounds, times (a) the
whole command cold (derived tables truncated first: reading, scoring, time to deterioration,
binary COPY of every score and deterioration row, foreign-key checks at commit), (b)
``visits.qlq_c30.score`` over the same responses (the floor of the goal figure), (c) the
command again over unchanged forms (nothing to write) and (d) pure scoring plus
``qlq_c30.time_to_deterioration_all`` per subject (the command's computation without the
database) and (e) ``qlq_c30.score_array`` over the same answers as one array (the scoring
the command itself runs since issue 19's third pass: numpy, ~10x faster than (b)). Each figure
is the median of the per-round ratios: (a)/(b) against the goal (the floor as the goal was
set), (a)/(d), (c)/(b) and (a)/(e) for information: (a)/(e) is what the database work costs
against the fastest pure scoring there is.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
from operator import itemgetter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["BENCH_DATABASE_URL"] = os.environ.get(
    "BENCH_QLQ_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialdesk_bench")

import common  # noqa: E402  (sets DATABASE_URL from BENCH_DATABASE_URL)
import django  # noqa: E402

FORMS_PER_SUBJECT = 10
REGISTRY = "BENCH-QLQ"


def generate(n_forms: int) -> None:
    """The trial, its subjects, visits and forms (audit triggers fire as for any insert).

    Inserted with Django's plain ``QuerySet.bulk_create``: the project's bulk_create would
    also queue an edit-check task per subject and model through the outbox (20,000 at 100,000
    forms) and send each to the broker on commit: over half the time of the fill, irrelevant
    to rescoring, and messages left on a broker no worker of this database consumes.
    """
    from django.db.models import QuerySet

    from edc.core.audit import change_reason
    from subjects.models import Site, Subject
    from trials.models import ProtocolVersion, Trial
    from visits import qlq_c30
    from visits.models import QlqC30Form, Visit

    trial = Trial.objects.filter(registry_id=REGISTRY).first()
    if trial is not None and QlqC30Form.objects.filter(subject__trial=trial).count() == n_forms:
        return
    if trial is not None:
        raise SystemExit(f"{REGISTRY} exists with another size: drop the bench database first")
    rng = random.Random(20261123)
    with change_reason("benchmark data"):
        trial = Trial.objects.create(registry_id=REGISTRY, registry="sponsor",
                                     title="QLQ-C30 rescoring benchmark")
        version = ProtocolVersion.objects.create(trial=trial, version=1, digest="0" * 64,
                                                 source_file="bench", document={})
        site = Site.objects.create(trial=trial, code="01", name="Bench site")
        n_subjects = n_forms // FORMS_PER_SUBJECT
        day0 = dt.date(2024, 1, 1)
        subjects = QuerySet(Subject).bulk_create(
            Subject(trial=trial, site=site, protocol_version=version, screening_number=f"B{i}",
                    subject_number=f"01{i:05d}", sex="F", age_at_consent=60,
                    consent_date=day0, status="on_treatment", day0=day0, enrolled_on=day0)
            for i in range(n_subjects))
        for start in range(0, n_subjects, 1000):
            chunk = subjects[start:start + 1000]
            visits = QuerySet(Visit).bulk_create(
                Visit(subject=s, code=f"A{k}", kind="assessment",
                      target_date=day0 + dt.timedelta(weeks=8 * k), qlq_c30_due=True)
                for s in chunk for k in range(FORMS_PER_SUBJECT))
            QuerySet(QlqC30Form).bulk_create(
                QlqC30Form(subject_id=v.subject_id, visit=v, mode="electronic",
                           completion_date=v.target_date,
                           **{key: (None if rng.random() < 0.05 else
                                    rng.randint(1, qlq_c30.ITEM_MAX[key]))
                              for key in qlq_c30.ITEM_KEYS})
                for v in visits)


def main(n_forms: int) -> None:
    common.ensure_database()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    generate(n_forms)
    print(f"data ready ({n_forms:,} forms) in {time.perf_counter() - started:.1f} s")

    from trials.models import Trial
    from visits import qlq_c30
    from visits.models import QlqC30Form, QlqC30Score
    from visits.rescoring import rescore_trial

    trial = Trial.objects.get(registry_id=REGISTRY)
    from django.db import connection

    with connection.cursor() as cursor:  # statistics as autovacuum would keep them
        cursor.execute("ANALYZE subjects_subject, visits_visit, visits_qlqc30form, "
                       "visits_qlqc30score, visits_qlqc30subjectdeterioration")
    rows = list(QlqC30Form.objects.filter(subject__trial=trial)
                .order_by("subject_id", "completion_date", "pk")
                .values_list("subject_id", "completion_date", *qlq_c30.ITEM_KEYS)
                .iterator(chunk_size=10000))
    responses = [dict(zip(qlq_c30.ITEM_KEYS, row[2:], strict=True)) for row in rows]
    starts = dict(trial.subjects.values_list("pk", "enrolled_on"))
    by_scale = itemgetter(*qlq_c30.SCALES)

    def pure() -> None:
        for r in responses:
            qlq_c30.score(r)

    import numpy as np

    array = np.array([[qlq_c30.UNANSWERED if v is None else v for v in row[2:]]
                      for row in rows], dtype=np.int16)

    def pure_array() -> None:
        qlq_c30.score_array(array)

    def pure_with_deterioration() -> None:
        """The command's computation without the database: scores, then every subject's
        deterioration from its date-ordered forms (all at scheduled visits here)."""
        current, dates, history = None, [], []
        for (subject_id, day, *_), r in zip(rows, responses, strict=True):
            if subject_id != current:
                if current is not None:
                    qlq_c30.time_to_deterioration_all(starts[current], dates, history)
                current, dates, history = subject_id, [], []
            dates.append(day)
            history.append(by_scale(qlq_c30.score(r)))
        qlq_c30.time_to_deterioration_all(starts[current], dates, history)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def cpu() -> float:
        """CPU seconds of this process and of its database backend (same machine)."""
        fields = backend.read_text().rsplit(")", 1)[1].split()
        return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK")

    cpu_times: dict[str, list[float]] = {"cold": [], "pure": []}

    def timed(fn, name: str) -> float:
        t0, c0 = time.perf_counter(), cpu()
        fn()
        elapsed = time.perf_counter() - t0
        if name in cpu_times:
            cpu_times[name].append(cpu() - c0)
        return elapsed

    def cold() -> int:
        with connection.cursor() as cursor:  # derived tables only: a first-ever scoring run
            cursor.execute("TRUNCATE visits_qlqc30score, visits_qlqc30subjectdeterioration")
        return rescore_trial(trial.pk)

    times: dict[str, list[float]] = {"cold": [], "pure": [], "warm": [], "pure_ttd": [],
                                     "pure_array": []}
    for _ in range(3):
        for name, fn in (("cold", cold), ("pure", pure),
                         ("warm", lambda: rescore_trial(trial.pk)),
                         ("pure_ttd", pure_with_deterioration), ("pure_array", pure_array)):
            times[name].append(timed(fn, name))
    count = QlqC30Score.objects.filter(form__subject__trial=trial).count()
    assert count == len(responses), (count, len(responses))

    def ratios(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(times[a], times[b], strict=True)]

    label = f"QLQ-C30 rescoring, {count // 1000}k forms"
    median = {name: statistics.median(values) for name, values in times.items()}
    goal = ratios("cold", "pure")
    common.print_figures([
        common.Figure(f"{label} (command / pure scoring)", median["cold"], median["pure"],
                      "s", statistics.median(goal), 3.0,
                      f"rounds {min(goal):.2f}-{max(goal):.2f}x"),
        common.Figure(f"{label} (command / scoring + deterioration)", median["cold"],
                      median["pure_ttd"], "s", statistics.median(ratios("cold", "pure_ttd"))),
        common.Figure(f"{label} (command / score_array, the fastest pure scoring)",
                      median["cold"], median["pure_array"], "s",
                      statistics.median(ratios("cold", "pure_array"))),
        common.Figure(f"{label} re-run, nothing changed / pure scoring", median["warm"],
                      median["pure"], "s", statistics.median(ratios("warm", "pure"))),
        common.Figure(f"{label} CPU (command + its backend / pure scoring)",
                      statistics.median(cpu_times["cold"]), statistics.median(cpu_times["pure"]),
                      "s", statistics.median(a / b for a, b in zip(*cpu_times.values(),
                                                                   strict=True))),
    ])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
