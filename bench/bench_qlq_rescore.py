"""Bulk QLQ-C30 rescoring: pure scoring vs the whole ``rescore_qlq_c30`` command.

Usage: ``python bench/bench_qlq_rescore.py [N_FORMS]`` (default 100,000). Uses its own
database (``BENCH_DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/trialdesk_bench),
migrates it, generates a synthetic trial of N forms once (10 forms per subject), then
times (a) ``visits.qlq_c30.score`` over the same responses and (b) the whole command
(streaming read, scoring, deterioration, batched upserts) and prints both rates.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialdesk_bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")

import django  # noqa: E402

FORMS_PER_SUBJECT = 10
REGISTRY = "BENCH-QLQ"


def ensure_database() -> None:
    import psycopg

    name = os.environ["DATABASE_URL"].rsplit("/", 1)[1]
    admin_url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def generate(n_forms: int) -> None:
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
        subjects = Subject.objects.bulk_create(
            Subject(trial=trial, site=site, protocol_version=version, screening_number=f"B{i}",
                    subject_number=f"01{i:05d}", sex="F", age_at_consent=60,
                    consent_date=day0, status="on_treatment", day0=day0, enrolled_on=day0)
            for i in range(n_subjects))
        for start in range(0, n_subjects, 1000):
            chunk = subjects[start:start + 1000]
            visits = Visit.objects.bulk_create(
                Visit(subject=s, code=f"A{k}", kind="assessment",
                      target_date=day0 + dt.timedelta(weeks=8 * k), qlq_c30_due=True)
                for s in chunk for k in range(FORMS_PER_SUBJECT))
            QlqC30Form.objects.bulk_create(
                QlqC30Form(subject_id=v.subject_id, visit=v, mode="electronic",
                           completion_date=v.target_date,
                           **{key: (None if rng.random() < 0.05 else
                                    rng.randint(1, qlq_c30.ITEM_MAX[key]))
                              for key in qlq_c30.ITEM_KEYS})
                for v in visits)


def main(n_forms: int) -> None:
    ensure_database()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    generate(n_forms)
    print(f"data ready ({n_forms:,} forms) in {time.perf_counter() - started:.1f} s")

    from trials.models import Trial
    from visits import qlq_c30
    from visits.models import QlqC30Form
    from visits.rescoring import rescore_trial

    trial = Trial.objects.get(registry_id=REGISTRY)
    responses = [dict(zip(qlq_c30.ITEM_KEYS, row, strict=True)) for row in
                 QlqC30Form.objects.filter(subject__trial=trial)
                 .values_list(*qlq_c30.ITEM_KEYS).iterator(chunk_size=10000)]
    pure = []
    for _ in range(3):
        t0 = time.perf_counter()
        for r in responses:
            qlq_c30.score(r)
        pure.append(time.perf_counter() - t0)
    pure_rate = len(responses) / min(pure)
    from django.db import connection

    cold = []
    for _ in range(2):
        with connection.cursor() as cursor:  # derived tables only: a first-ever scoring run
            cursor.execute("TRUNCATE visits_qlqc30score, visits_qlqc30deterioration")
        t0 = time.perf_counter()
        count = rescore_trial(trial.pk)
        cold.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    rescore_trial(trial.pk)
    warm = time.perf_counter() - t0
    cold_rate = count / min(cold)
    print(f"pure scoring:         {pure_rate:10,.0f} forms/s (best of 3, {len(responses):,} forms)")
    print(f"command, cold:        {cold_rate:10,.0f} forms/s (best of 2: {min(cold):.2f} s; "
          "every score and result row written)")
    print(f"command, re-run:      {count / warm:10,.0f} forms/s ({warm:.2f} s; unchanged rows "
          "not rewritten)")
    print(f"cold command vs the 20,000 forms/s scoring goal: {20_000 / cold_rate:.2f}x "
          "(goal: within 5x)")
    print(f"cold command vs measured pure scoring: {pure_rate / cold_rate:.2f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
