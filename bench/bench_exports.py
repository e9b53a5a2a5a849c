"""Export and AE API benchmark (not a test): one command, figures printed.

Usage::

    .venv/bin/python bench/bench_exports.py

Uses its own database (``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/trialdesk_bench_exports), migrates it and generates once
(reused afterwards) a synthetic trial: 2,000 subjects at 10 sites, 100,000 AEs (one grade
episode and one attribution each, a TI flag on 10 %), 4,000 exposures, 20,000 QLQ-C30 forms,
written with COPY (the audit triggers fire as for any insert). Then, in the same run:

(a) SDTM AE CSV export (``exports.engine`` + ``exports.writers``, as the API streams it): wall
    time (best of 3) against ``COPY (<the same SELECT>) TO STDOUT (FORMAT csv)`` (the floor),
    and peak Python memory (tracemalloc) for 10,000 vs 100,000 rows, for each format (CSV,
    Dataset-JSON, NDJSON, SAS XPORT v5);
(b) ``GET /api/v1/adverse-events/?page_size=100`` over loopback: gunicorn (2 sync workers) on
    127.0.0.1:<free port>, a bounded thread-pool client (400 requests, 4 threads, 120 s cap):
    requests/s, p50/p99 latency;
(c) AE create through ``POST /api/v1/adverse-events/`` (validation, audit, outbox) vs a bare
    Django view inserting the same three rows (AE, grade episode, attribution) with the ORM
    (URLconf below, in this script only), 300 requests each, 4 threads. Creates go to a second
    seed trial, so the export figures stay comparable between runs; queued Celery messages go
    to a private queue that is deleted at the end.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialdesk_bench_exports")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")

import django  # noqa: E402

N_SITES, N_SUBJECTS, N_AES, N_FORMS = 10, 2_000, 100_000, 20_000
AES_PER_SUBJECT, FORMS_PER_SUBJECT = N_AES // N_SUBJECTS, N_FORMS // N_SUBJECTS
MAIN, CREATE = "NCT05699811", "SHEH-MSC-L"
CREATE_SUBJECTS = 100
REQUESTS_LIST, REQUESTS_CREATE, THREADS, CAP_SECONDS = 400, 300, 4, 120.0
PASSWORD = "bench-" + "x" * 8


# ------------------------------------------------------------------------------ database


def ensure_database() -> None:
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def copy_rows(model, rows: list[dict], common: dict) -> None:
    """COPY dicts of attribute values into ``model``'s table (defaults for the rest)."""
    from django.db import connection
    from psycopg.types.json import Jsonb

    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    defaults = {}
    for f in fields:
        if f.has_default():
            defaults[f.attname] = f.get_default()
        elif f.null:
            defaults[f.attname] = None
        elif f.get_internal_type() in ("CharField", "TextField"):
            defaults[f.attname] = ""
    columns = ", ".join(f'"{f.column}"' for f in fields)
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            values = []
            for f in fields:
                value = row.get(f.attname, common.get(f.attname, defaults.get(f.attname)))
                values.append(Jsonb(value) if isinstance(value, dict | list) else value)
            copy.write_row(values)


def ids_of(model, **filters) -> list[int]:
    return list(model.objects.filter(**filters).order_by("pk").values_list("pk", flat=True))


def generate() -> None:
    from django.db import connection, transaction

    from adverse_events.models import (
        AdverseEvent,
        Attribution,
        CtcaeTerm,
        GradeEpisode,
        ToxicityFlag,
    )
    from subjects.models import Site, Subject
    from trials.models import Trial
    from visits.models import Exposure, QlqC30Form, Visit

    trial = Trial.objects.get(registry_id=MAIN)
    have = AdverseEvent.objects.filter(subject__trial=trial).count()
    if have == N_AES and QlqC30Form.objects.filter(subject__trial=trial).count() == N_FORMS:
        return
    if have:
        raise SystemExit("the bench trial exists with another size: drop the bench database")
    rng = random.Random(20261123)
    now = dt.datetime.now(dt.UTC)
    common = {"created_at": now, "updated_at": now}
    version = trial.current_version()
    arm, level = version.arms.get(code="MONO"), version.dose_levels.get(code="DL1")
    agent = version.interventions.get(code="MSC-IFNA")
    terms = {g: list(CtcaeTerm.objects.exclude(**{f"grade_{g}": ""}).values_list("pk", flat=True))
             for g in (1, 2, 3)}
    with transaction.atomic():
        sites = [Site.objects.create(trial=trial, code=f"S{n:02d}", name=f"Bench site {n}",
                                     country="France") for n in range(1, N_SITES + 1)]
        plan = []
        for i in range(N_SUBJECTS):
            site = sites[i % N_SITES]
            consent = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(300))
            day0 = consent + dt.timedelta(days=14)
            plan.append({
                "trial_id": trial.pk, "site_id": site.pk, "protocol_version_id": version.pk,
                "screening_number": f"B{i:05d}", "subject_number": f"{site.code}{i:05d}",
                "sex": rng.choice("FM"), "birth_date": dt.date(1950 + rng.randrange(40), 1, 1),
                "age_at_consent": 40 + rng.randrange(40), "consent_date": consent,
                "status": "on_treatment", "arm_id": arm.pk, "dose_level_id": level.pk,
                "cohort": 1 + (i // 3) % 10, "day0": day0, "enrolled_on": day0,
                "treatment_stop_date": day0 + dt.timedelta(days=180) if i % 2 else None})
        copy_rows(Subject, plan, common)
        subjects = list(Subject.objects.filter(trial=trial).order_by("pk")
                        .values_list("pk", "day0", "consent_date"))
        visits = []
        for pk, day0, _ in subjects:
            visits += [{"subject_id": pk, "code": f"C{c}", "kind": "infusion", "status": "done",
                        "target_date": day0 + dt.timedelta(days=28 * (c - 1)),
                        "actual_date": day0 + dt.timedelta(days=28 * (c - 1))} for c in (1, 2)]
            visits += [{"subject_id": pk, "code": f"Q{q}", "kind": "assessment",
                        "status": "done", "qlq_c30_due": True,
                        "target_date": day0 + dt.timedelta(weeks=4 * q),
                        "actual_date": day0 + dt.timedelta(weeks=4 * q)}
                       for q in range(1, FORMS_PER_SUBJECT + 1)]
        copy_rows(Visit, visits, common)
        rows = Visit.objects.filter(subject__trial=trial).values_list(
            "pk", "subject_id", "code", "actual_date")
        copy_rows(Exposure, [
            {"subject_id": s, "visit_id": v, "intervention_id": agent.pk, "administered_on": on,
             "dose_value": 2000000, "dose_unit": "cells/kg", "weight_kg": 70}
            for v, s, code, on in rows if code.startswith("C")], common)
        copy_rows(QlqC30Form, [
            {"subject_id": s, "visit_id": v, "completion_date": on, "mode": "electronic",
             **{f"q{n}": None if rng.random() < 0.03 else rng.randint(1, 7 if n >= 29 else 4)
                for n in range(1, 31)}}
            for v, s, code, on in rows if code.startswith("Q")], common)
        aes = []
        for pk, day0, consent in subjects:
            for _ in range(AES_PER_SUBJECT):
                grade = rng.choice((1, 1, 2, 2, 3))
                onset = max(consent, day0 + dt.timedelta(days=rng.randrange(-10, 200)))
                end = None if rng.random() < 0.1 else onset + dt.timedelta(days=rng.randrange(20))
                serious = rng.random() < 0.05
                aes.append({
                    "subject_id": pk, "term_id": rng.choice(terms[grade]), "onset_date": onset,
                    "resolution_date": end, "grade": grade, "serious": serious,
                    "sae_hospitalization": serious,
                    "aware_at": now if serious else None,
                    "action_taken": rng.choice(("dose_not_changed", "not_applicable")),
                    "outcome": "recovered" if end else "not_recovered"})
        copy_rows(AdverseEvent, aes, common)
        ae_ids = ids_of(AdverseEvent, subject__trial=trial)
        copy_rows(GradeEpisode, [
            {"adverse_event_id": pk, "grade": ae["grade"], "start_date": ae["onset_date"],
             "end_date": ae["resolution_date"]} for pk, ae in zip(ae_ids, aes, strict=True)],
            common)
        levels = ("unrelated", "unlikely", "possible", "probable", "definite")
        copy_rows(Attribution, [
            {"adverse_event_id": pk, "intervention_id": agent.pk, "level": rng.choice(levels)}
            for pk in ae_ids], common)
        copy_rows(ToxicityFlag, [
            {"subject_id": ae["subject_id"], "adverse_event_id": pk, "rule_code": "TI",
             "kind": "TI", "computed": rng.random() < 0.3, "evaluated_at": now}
            for pk, ae in zip(ae_ids, aes, strict=True) if rng.random() < 0.1], common)
        create_trial = Trial.objects.get(registry_id=CREATE)
        cversion = create_trial.current_version()
        csite = Site.objects.create(trial=create_trial, code="C1", name="Create bench site")
        copy_rows(Subject, [{
            "trial_id": create_trial.pk, "site_id": csite.pk, "protocol_version_id": cversion.pk,
            "screening_number": f"C{i:04d}", "subject_number": f"C1{i:04d}", "sex": "F",
            "age_at_consent": 50, "consent_date": dt.date(2024, 1, 1), "status": "on_treatment",
            "arm_id": cversion.arms.first().pk, "day0": dt.date(2024, 1, 15),
            "enrolled_on": dt.date(2024, 1, 15)} for i in range(CREATE_SUBJECTS)], common)
        cagent = cversion.interventions.get(code="MSC-L")
        csubjects = ids_of(Subject, trial=create_trial)
        copy_rows(Visit, [{"subject_id": s, "code": "C1", "kind": "infusion", "status": "done",
                           "target_date": dt.date(2024, 1, 15),
                           "actual_date": dt.date(2024, 1, 15)} for s in csubjects], common)
        copy_rows(Exposure, [
            {"subject_id": s, "visit_id": v, "intervention_id": cagent.pk,
             "administered_on": dt.date(2024, 1, 15), "dose_value": 1, "dose_unit": "cells/kg"}
            for v, s in Visit.objects.filter(subject__trial=create_trial)
            .values_list("pk", "subject_id")], common)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def users() -> dict[str, str]:
    """Tokens: a data manager of the main trial (list), an investigator of the create trial."""
    from django.contrib.auth.models import Group, User
    from knox.models import AuthToken

    from subjects.models import Membership
    from trials.models import Trial

    tokens = {}
    for name, role, registry in (("bench_dm", "data_manager", MAIN),
                                 ("bench_pi", "investigator", CREATE)):
        user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        if created:
            user.set_password(PASSWORD)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            Membership.objects.create(user=user, trial=Trial.objects.get(registry_id=registry))
        tokens[name] = AuthToken.objects.create(user=user)[1]
    return tokens


# ----------------------------------------------------------------------------- (a) exports


def export_spec(site_ids=None):
    from exports.engine import Dataset, Spec
    from subjects.models import Site
    from trials.models import Trial

    trial = Trial.objects.get(registry_id=MAIN)
    if site_ids is None:
        site_ids = tuple(Site.objects.filter(trial=trial).order_by("pk")
                         .values_list("pk", flat=True))
    return Spec(dataset=Dataset.SDTM_AE, fmt="csv", trial_id=trial.pk,
                site_ids=tuple(site_ids), unblinded=True)


def run_export(spec, fmt: str = "csv") -> tuple[float, int, int]:
    """The streamed export's work, bytes discarded: (seconds, rows, bytes)."""
    from exports import engine, writers

    started = time.perf_counter()
    source = engine.Source(engine.plan(spec), spec).open()
    tally = writers.Tally()
    rows = tally.count(source.chunks())
    if fmt == "xpt":
        import tempfile

        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "ae.xpt")
            writers.write_xpt(path, name=source.plan.name, label=source.plan.label,
                              variables=source.plan.variables, row_chunks=rows)
            return time.perf_counter() - started, tally.rows, os.path.getsize(path)
    header = engine.dataset_json_header(source, "bench") if fmt in ("json", "ndjson") else None
    for _ in tally.encode(writers.text_chunks(fmt, header=source.plan.header, row_chunks=rows,
                                              dataset_json_header=header)):
        pass
    return time.perf_counter() - started, tally.rows, tally.size


def run_copy_floor(spec) -> tuple[float, int]:
    """``COPY (<the export's SELECT>) TO STDOUT (FORMAT csv)``, bytes discarded."""
    import psycopg
    from django.db import connection

    from exports import engine

    started = time.perf_counter()
    plan = engine.plan(spec)
    connection.ensure_connection()
    raw = connection.connection
    literal = psycopg.ClientCursor(raw).mogrify(plan.sql, {**spec.params, **plan.params})
    size = 0
    with raw.cursor() as cursor, cursor.copy(
            f"COPY ({literal}) TO STDOUT (FORMAT csv, HEADER)") as copy:
        for block in copy:
            size += len(block)
    return time.perf_counter() - started, size


def peak_memory(spec, fmt: str = "csv") -> tuple[int, int]:
    tracemalloc.start()
    tracemalloc.reset_peak()
    _, rows, _ = run_export(spec, fmt)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return rows, peak


def bench_exports() -> None:
    from subjects.models import Site
    from trials.models import Trial

    every = export_spec()
    one_site = export_spec([Site.objects.filter(trial__registry_id=MAIN, code="S01").get().pk])
    run_export(every)  # warm the caches once
    runs = [run_export(every) for _ in range(3)]
    floors = [run_copy_floor(every) for _ in range(3)]
    best, rows, size = min(runs)
    floor, floor_size = min(floors)
    print(f"(a) SDTM AE CSV export, {rows:,} rows, {size / 1e6:.1f} MB: {best:.2f} s "
          f"({rows / best:,.0f} rows/s, best of 3)")
    print(f"    floor COPY (same SELECT) TO STDOUT csv, {floor_size / 1e6:.1f} MB: "
          f"{floor:.2f} s; export / floor = {best / floor:.2f}x (goal <= 3x)")
    for fmt in ("csv", "json", "ndjson", "xpt"):
        seconds, fmt_rows, fmt_size = min(run_export(every, fmt) for _ in range(3))
        small_rows, small_peak = peak_memory(one_site, fmt)
        big_rows, big_peak = peak_memory(every, fmt)
        print(f"    SDTM AE {fmt}, {fmt_rows:,} rows, {fmt_size / 1e6:.1f} MB: {seconds:.2f} s "
              f"= {seconds / floor:.2f}x COPY; peak Python memory {small_rows:,} rows "
              f"{small_peak / 1024:,.0f} KiB, {big_rows:,} rows {big_peak / 1024:,.0f} KiB "
              f"(x{big_peak / small_peak:.2f} for x{big_rows / small_rows:.0f} rows)")
    assert Trial.objects.filter(registry_id=MAIN).exists()


# --------------------------------------------------------------------- (b), (c) over HTTP


def bare_ae_create(request):
    """The same three inserts as the API's AE create, without validation, serializers,
    permissions, scoping or the outbox (bench only, never routed by the product)."""
    from django.db import transaction
    from django.http import JsonResponse

    from adverse_events.models import AdverseEvent, Attribution, GradeEpisode

    data = json.loads(request.body)
    episode = data["grade_episodes"][0]
    with transaction.atomic():
        ae = AdverseEvent.objects.create(
            subject_id=data["subject"], term_id=data["term"], onset_date=data["onset_date"],
            resolution_date=data["resolution_date"], grade=episode["grade"])
        GradeEpisode.objects.create(adverse_event=ae, grade=episode["grade"],
                                    start_date=episode["start_date"],
                                    end_date=episode["end_date"])
        Attribution.objects.create(adverse_event=ae,
                                   intervention_id=data["attributions"][0]["intervention"],
                                   level=data["attributions"][0]["level"])
    return JsonResponse({"id": ae.pk}, status=201)


def __getattr__(name: str):
    """``urlpatterns`` (ROOT_URLCONF of the bench server): the product's plus the bare view."""
    if name == "urlpatterns":
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        from edc.urls import urlpatterns as product

        return [path("bench/bare-ae/", csrf_exempt(bare_ae_create)), *product]
    raise AttributeError(name)


_application = None


def application(environ, start_response):
    """WSGI entry of the bench server (``gunicorn bench.bench_exports:application``)."""
    global _application
    if _application is None:
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        _application = get_wsgi_application()
        settings.ROOT_URLCONF = "bench.bench_exports"
    return _application(environ, start_response)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, queue: str):
        self.port = free_port()
        env = dict(os.environ, DEBUG="false", SECRET_KEY=secrets.token_urlsafe(32),
                   CELERY_TASK_DEFAULT_QUEUE=queue, LOG_LEVEL="WARNING")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "bench.bench_exports:application",
             "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--chdir", str(ROOT),
             "--log-level", "warning", "--timeout", "120"], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/health/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("gunicorn did not start")

    def request(self, method: str, path: str, body: bytes | None = None,
                token: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def load(server: Server, count: int, make_request) -> dict:
    """``count`` requests from ``THREADS`` threads (stops at ``CAP_SECONDS``)."""
    latencies, statuses, lock = [], {}, threading.Lock()
    stop_at = time.monotonic() + CAP_SECONDS

    def one(i: int) -> None:
        if time.monotonic() > stop_at:
            return
        method, path, body, token = make_request(i)
        t0 = time.perf_counter()
        status, _ = server.request(method, path, body, token)
        elapsed = time.perf_counter() - t0
        with lock:
            latencies.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    latencies.sort()
    return {"n": len(latencies), "rps": len(latencies) / wall, "statuses": statuses,
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000}


def show(label: str, result: dict) -> None:
    print(f"    {label}: {result['n']} requests, {result['rps']:.1f} req/s, "
          f"p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, statuses {result['statuses']}")


def bench_http(tokens: dict[str, str]) -> None:
    from adverse_events.models import CtcaeTerm
    from subjects.models import Subject
    from trials.models import Trial

    queue = f"bench-exports-{uuid.uuid4().hex[:8]}"
    create_trial = Trial.objects.get(registry_id=CREATE)
    subjects = list(Subject.objects.filter(trial=create_trial).values_list("pk", flat=True))
    agent = create_trial.current_version().interventions.get(code="MSC-L").pk
    fatigue = CtcaeTerm.objects.get(meddra_code="10016256").pk
    main = Trial.objects.get(registry_id=MAIN)
    server = Server(queue)
    try:
        print(f"(b) AE list over loopback (gunicorn, 2 workers, {THREADS} client threads)")
        list_path = f"/api/v1/adverse-events/?page_size=100&trial={main.pk}"
        server.request("GET", list_path, token=tokens["bench_dm"])  # warm up
        show("GET /api/v1/adverse-events/?page_size=100",
             load(server, REQUESTS_LIST, lambda i: ("GET", list_path, None, tokens["bench_dm"])))
        start, stop = time.perf_counter(), 0
        status, body = server.request("GET", f"/api/v1/exports/sdtm/ae/?trial={main.pk}",
                                      token=tokens["bench_dm"])
        stop = time.perf_counter() - start
        print(f"    GET /api/v1/exports/sdtm/ae/ (100,000 rows) over HTTP: {status}, "
              f"{len(body) / 1e6:.1f} MB in {stop:.2f} s")

        def payload(i: int) -> bytes:
            onset = dt.date(2024, 2, 1) + dt.timedelta(days=i % 300)
            return json.dumps({
                "subject": subjects[i % len(subjects)], "term": fatigue,
                "onset_date": onset.isoformat(), "resolution_date": onset.isoformat(),
                "grade_episodes": [{"grade": 1, "start_date": onset.isoformat(),
                                    "end_date": onset.isoformat()}],
                "attributions": [{"intervention": agent, "level": "possible"}],
                "action_taken": "dose_not_changed", "outcome": "recovered"}).encode()

        print(f"(c) AE create ({THREADS} client threads)")
        api = load(server, REQUESTS_CREATE, lambda i: (
            "POST", "/api/v1/adverse-events/", payload(i), tokens["bench_pi"]))
        bare = load(server, REQUESTS_CREATE, lambda i: (
            "POST", "/bench/bare-ae/", payload(i), None))
        show("POST /api/v1/adverse-events/", api)
        show("bare Django view, same 3 inserts", bare)
        print(f"    API / bare: {bare['rps'] / api['rps']:.2f}x the time per request "
              f"(p50 {api['p50'] / bare['p50']:.2f}x)")
    finally:
        server.stop()
        from edc.celery import app

        with app.connection_for_write() as conn:
            channel = conn.default_channel
            try:
                channel.queue_delete(queue)
            except Exception as exc:  # the queue was never declared: nothing queued
                print(f"    (queue {queue}: {type(exc).__name__})")


def main() -> None:
    ensure_database()
    django.setup()
    from django.core.management import call_command

    from adverse_events import ctcae

    call_command("migrate", verbosity=0)
    ctcae.load()
    call_command("seed_protocols", verbosity=0)
    started = time.perf_counter()
    generate()
    print(f"data ready ({N_SUBJECTS:,} subjects, {N_AES:,} AEs, {N_FORMS:,} QLQ-C30 forms) in "
          f"{time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs")
    tokens = users()
    bench_exports()
    bench_http(tokens)


if __name__ == "__main__":
    main()
