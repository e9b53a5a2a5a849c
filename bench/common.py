"""What the benchmarks share: their database, the synthetic trial, a gunicorn server and the
interleaved timing that turns two code paths into one ratio.

Every benchmark compares the project's code path with a floor measured in the same run
(``Figure``: project / floor / ratio). The machine is shared (2 cores, other work running),
so the two are timed interleaved, request by request, and the ratio is the median of the
per-round ratios of medians, never an absolute time.
"""

from __future__ import annotations

import datetime as dt
import http.client
import itertools
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialdesk_bench_exports")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")

N_SITES, N_SUBJECTS, N_AES, N_FORMS = 10, 2_000, 100_000, 20_000
AES_PER_SUBJECT, FORMS_PER_SUBJECT = N_AES // N_SUBJECTS, N_FORMS // N_SUBJECTS
MAIN, CREATE = "NCT05699811", "SHEH-MSC-L"
CREATE_SUBJECTS = 100
PASSWORD = "bench-" + "x" * 8


@dataclass
class Figure:
    """One measure: the project's figure, the floor's, and their ratio (with its goal)."""

    label: str
    project: float
    floor: float
    unit: str
    ratio: float
    goal: float | None = None
    note: str = ""

    def line(self) -> str:
        goal = f" (goal <= {self.goal:g}x)" if self.goal else ""
        met = "" if not self.goal else (" ok" if self.ratio <= self.goal else " OVER")
        note = f"  [{self.note}]" if self.note else ""
        return (f"{self.label:<46} {self.project:>10.2f} {self.unit:<3} / "
                f"{self.floor:>8.2f} {self.unit:<3} = {self.ratio:5.2f}x{goal}{met}{note}")

    def record(self) -> str:
        """A machine-readable line for ``bench/run_all.py``."""
        return "FIGURE " + json.dumps(self.__dict__)


def print_figures(figures: list[Figure]) -> None:
    print(f"{'measure':<46} {'project':>14} / {'floor':>12} = ratio")
    for figure in figures:
        print(figure.line())
        print(figure.record(), file=sys.stderr)


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
    """Tokens: a data manager of the main trial (all sites), an investigator of its site S01
    (one site), an investigator of the create trial."""
    from django.contrib.auth.models import Group, User
    from knox.models import AuthToken

    from subjects.models import Membership, Site
    from trials.models import Trial

    tokens = {}
    for name, role, registry, site in (("bench_dm", "data_manager", MAIN, None),
                                       ("bench_site_pi", "investigator", MAIN, "S01"),
                                       ("bench_pi", "investigator", CREATE, None)):
        user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        if created:
            user.set_password(PASSWORD)
            user.save()
            user.groups.add(Group.objects.get(name=role))
            trial = Trial.objects.get(registry_id=registry)
            Membership.objects.create(user=user, trial=trial, site=Site.objects.get(
                trial=trial, code=site) if site else None)
        AuthToken.objects.filter(user=user).delete()  # one live token per bench user
        tokens[name] = AuthToken.objects.create(user=user)[1]
    return tokens


def prepare() -> dict[str, str]:
    """Migrate the bench database, load the reference data, generate the trial once
    (reused afterwards) and return the users' tokens."""
    import django

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
    return users()


_ports_taken = itertools.count()


def free_port() -> int:
    """A free loopback port: from ``BENCH_PORT`` on when set (sessions sharing a machine keep
    to their own ports; each server of a run takes the next), else one the system picks."""
    if os.environ.get("BENCH_PORT"):
        return int(os.environ["BENCH_PORT"]) + next(_ports_taken)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn serving ``app`` (a WSGI callable's dotted path) on a free loopback port."""

    def __init__(self, app: str, queue: str, workers: int = 2, chdir: Path = ROOT,
                 **environ: str):
        self.port = free_port()
        env = dict(os.environ, DEBUG="false", SECRET_KEY=secrets.token_urlsafe(32),
                   AUDIT_SIGNING_KEY=secrets.token_urlsafe(32),
                   CELERY_TASK_DEFAULT_QUEUE=queue, LOG_LEVEL="WARNING", **environ)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", app,
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--chdir", str(chdir),
             "--log-level", "warning", "--timeout", "120"], cwd=chdir, env=env)
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


def drop_queue(queue: str) -> None:
    """Delete the private Celery queue the bench server wrote to (no worker consumes it)."""
    from edc.celery import app

    with app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_delete(queue)
        except Exception as exc:  # the queue was never declared: nothing queued
            print(f"    (queue {queue}: {type(exc).__name__})")


def interleaved(label: str, project, floor, *, rounds: int = 5, per_round: int = 30,
                goal: float | None = None, unit: str = "ms", note: str = "") -> Figure:
    """Time ``project()`` and ``floor()`` alternately (``per_round`` pairs per round, after one
    warm-up pair): per round the ratio of the median times; the figure is the median of the
    round ratios (project and floor: medians over every call, in ``unit``)."""
    scale = 1000.0 if unit == "ms" else 1.0
    project(), floor()
    ratios, mine, theirs = [], [], []
    for _ in range(rounds):
        a, b = [], []
        for i in range(per_round):
            pair = ((project, a), (floor, b)) if i % 2 == 0 else ((floor, b), (project, a))
            for call, times in pair:
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
        ratios.append(statistics.median(a) / statistics.median(b))
        mine += a
        theirs += b
    return Figure(label, statistics.median(mine) * scale, statistics.median(theirs) * scale,
                  unit, statistics.median(ratios), goal, note)
