"""Concurrent enrollment benchmark (not a test): 50 at once vs one alone, through the API.

Usage::

    .venv/bin/python bench/bench_enrollment.py [ROUNDS]

Own database (``BENCH_ENROL_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/trialdesk_bench_enrol): migrated and seeded on first use.
Trial NCT05962450 (1:1 permuted blocks, one list, one site). As a scaled-out deployment
runs (issue #19): two gunicorn instances (2 sync workers each, ``DEBUG=false``,
``edc.wsgi``) and two ``celery worker`` processes on one PostgreSQL, requests alternating
between the instances (``BENCH_ENROL_INSTANCES=1``: one instance of 4 workers, no Celery
worker). Per round (default 3): 10 enrollments one at a time (the floor: one enrollment
alone), then 50 at once (50 threads released by a barrier, one
``POST /api/v1/subjects/<id>/enroll/`` each on a new connection). Every enrollment must
answer 200; after the run every allocation slot and every subject number is used once, and
every task the enrollments queued (edit checks, through the outbox) is done.

Figures: the median over rounds of (p50 of the 50 / p50 alone) (goal 2x) and of
(p99 of the 50 / p50 alone), with the p99 itself (goal <= 1 s) in the note. The profile
samples ``pg_stat_activity`` every 10 ms during the concurrent bursts: share of the
enrollment backends' time waiting on a lock (by lock: the audit hash-chain advisory lock of
each audit table, a row, a transaction), running in PostgreSQL, or idle in transaction
(Python work inside the transaction, or a worker waiting for the CPU).
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["BENCH_DATABASE_URL"] = os.environ.get(
    "BENCH_ENROL_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trialdesk_bench_enrol")

import common  # noqa: E402  (sets DATABASE_URL from BENCH_DATABASE_URL)
import django  # noqa: E402

REGISTRY = "NCT05962450"
CONCURRENT, ALONE, WORKERS = 50, 10, 4
INSTANCES = int(os.environ.get("BENCH_ENROL_INSTANCES", "2"))
ENROLL_DAY = dt.date(2025, 3, 3)
WEB, WORKER = "bench-enrol-web", "bench-enrol-celery"  # PostgreSQL application names
PERSISTENT = {"DB_CONN_MAX_AGE": "600"}  # as deployed: one connection per process, reused


def prepare() -> tuple:
    """Migrate and seed once; the trial, its site and an investigator's token."""
    common.ensure_database()
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from knox.models import AuthToken

    from subjects.models import Membership
    from trials.models import Trial

    call_command("migrate", verbosity=0)
    if not Trial.objects.filter(registry_id=REGISTRY).exists():
        call_command("seed_protocols", verbosity=0)
    trial = Trial.objects.get(registry_id=REGISTRY)
    site = trial.sites.order_by("code").first()
    user, created = User.objects.get_or_create(username="bench_enrol_pi",
                                               defaults={"is_staff": True})
    if created:
        user.groups.add(Group.objects.get(name="investigator"))
        Membership.objects.create(user=user, trial=trial, site=site)
    AuthToken.objects.filter(user=user).delete()
    return trial, site, AuthToken.objects.create(user=user)[1]


def screened(trial, site, n: int) -> list[int]:
    """``n`` new eligible subjects in screening; the list extended to hold them."""
    from edc.core.audit import change_reason
    from subjects import enrollment, randomization
    from subjects.models import EligibilityAnswer, RandomizationSlot, Subject

    enrollment.ensure_allocation_list(trial)
    free = RandomizationSlot.objects.filter(trial=trial, subject__isnull=True).count()
    with change_reason("benchmark data"):
        if free < n:  # as allocation_lists.extend does, without its statistician check
            stored = [randomization.Slot(s.stratum, s.sequence, s.block_number, s.block_size,
                                         s.arm.code) for s in RandomizationSlot.objects.filter(
                trial=trial).select_related("arm").order_by("sequence")]
            version, ratio, sizes = enrollment.design_of(trial)
            arms = {arm.code: arm for arm in version.arms.all()}
            new = randomization.extend_list(ratio, sizes, stored, -(-n // min(sizes)) + 1,
                                            enrollment.list_seed(trial))
            RandomizationSlot.objects.bulk_create(RandomizationSlot(
                trial=trial, stratum="", sequence=s.sequence, block_number=s.block_number,
                block_size=s.block_size, arm=arms[s.arm]) for s in new)
        version = trial.current_version()
        tag = uuid.uuid4().hex[:6]
        subjects = Subject.objects.bulk_create(Subject(
            trial=trial, site=site, protocol_version=version, screening_number=f"E{tag}{i:03d}",
            sex="F", age_at_consent=55, consent_date=dt.date(2025, 1, 2)) for i in range(n))
        criteria = list(version.criteria.all())
        EligibilityAnswer.objects.bulk_create(
            EligibilityAnswer(subject=s, criterion=c, met=c.kind == "inclusion")
            for s in subjects for c in criteria)
    return [s.pk for s in subjects]


class Sampler(threading.Thread):
    """``pg_stat_activity`` every 10 ms: what the other backends of the database are doing."""

    def __init__(self, url: str, chain_tables: dict[int, str]):
        super().__init__(daemon=True)
        self.url, self.chain_tables = url, chain_tables
        self.counts: Counter = Counter()
        self.running = threading.Event()
        self.stopped = False

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopped:
                if not self.running.is_set():
                    time.sleep(0.005)
                    continue
                rows = conn.execute(
                    "SELECT a.state, a.wait_event_type, l.locktype, l.objid, "
                    "l.relation::regclass::text FROM pg_stat_activity a "
                    "LEFT JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted "
                    "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
                    "AND a.backend_type = 'client backend' AND a.state <> 'idle'").fetchall()
                for state, wtype, locktype, objid, relation in rows:
                    if wtype == "Lock":
                        if locktype == "advisory":
                            what = f"audit chain {self.chain_tables.get(objid, objid)}"
                        else:
                            what = f"{locktype} {relation or ''}".strip()
                        self.counts[f"lock wait: {what}"] += 1
                    elif state == "active":
                        self.counts[f"in PostgreSQL ({wtype or 'CPU'})"] += 1
                    else:
                        self.counts[state] += 1
                time.sleep(0.01)


def chain_tables() -> dict[int, str]:
    """The advisory lock key (``hashtext``) of every audit table's hash chain."""
    from django.db import connection

    from edc.core.audit_integrity import event_tables

    with connection.cursor() as cursor:
        cursor.execute("SELECT t, hashtext(t) FROM unnest(%s::text[]) t", [event_tables()])
        return {key: name for name, key in cursor.fetchall()}


def _cpu(pid: int) -> int:
    """Clock ticks of CPU (user + system) used so far by process ``pid`` (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_now(servers: list[common.Server], workers: list[subprocess.Popen]) -> dict:
    """CPU ticks used so far by each process serving the bench, keyed (kind, pid): the gunicorn
    workers, the Celery workers (main process and pool child) and the PostgreSQL backends
    serving each (by ``application_name``, from ``PGAPPNAME``; the connections persist,
    ``DB_CONN_MAX_AGE``)."""
    from django.db import connection

    ticks = {("gunicorn", c): _cpu(c) for s in servers for c in _children(s.process.pid)}
    ticks |= {("Celery", p): _cpu(p) for w in workers for p in (w.pid, *_children(w.pid))}
    with connection.cursor() as cursor:
        cursor.execute("SELECT application_name, pid FROM pg_stat_activity WHERE datname = "
                       "current_database() AND application_name IN (%s, %s)", [WEB, WORKER])
        for name, pid in cursor.fetchall():
            ticks[(f"PostgreSQL for {'gunicorn' if name == WEB else 'Celery'}", pid)] = _cpu(pid)
    return ticks


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    """CPU seconds by kind of process between two ``cpu_now`` readings (a process started in
    between counts from zero; one that ended in between is lost: an undercount)."""
    used: Counter = Counter()
    for (kind, pid), ticks in after.items():
        used[kind] += ticks - before.get((kind, pid), 0)
    return {kind: n / os.sysconf("SC_CLK_TCK") for kind, n in used.items()}


def celery_workers(queue: str) -> list[subprocess.Popen]:
    """One ``celery worker`` (concurrency 1) per instance, consuming the bench's queue."""
    env = dict(os.environ, CELERY_TASK_DEFAULT_QUEUE=queue, LOG_LEVEL="WARNING",
               PGAPPNAME=WORKER, **PERSISTENT)
    return [subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "edc", "worker", "-Q", queue, "-n",
         f"{queue}-{i}@localhost", "--concurrency", "1", "--loglevel", "WARNING"],
        cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL) for i in range(INSTANCES)]


def tasks_done(since, timeout: float = 300) -> int:
    """Wait until every task queued since ``since`` is done (the edit checks the enrollments
    queued through the outbox, one task row per message); their number."""
    from edc.core.models import PendingTask

    tasks = PendingTask.objects.filter(created_at__gte=since)
    deadline = time.monotonic() + timeout
    while tasks.exclude(state__in=["done", "failed"]).exists():
        if time.monotonic() > deadline:
            raise SystemExit("the Celery workers left tasks undone")
        time.sleep(0.5)
    assert not tasks.filter(state="failed").exists(), "a task failed"
    return tasks.count()


def main(rounds: int) -> None:
    trial, site, token = prepare()
    from django.utils import timezone
    print(f"trial {REGISTRY}, site {site.code}; {os.cpu_count()} CPUs; {rounds} rounds of "
          f"{ALONE} alone + {CONCURRENT} concurrent; {INSTANCES} gunicorn instance(s) of "
          f"{WORKERS // INSTANCES} workers" + (f" and {INSTANCES} Celery workers"
                                               if INSTANCES > 1 else ""))
    queue = f"bench-enrol-{uuid.uuid4().hex[:8]}"
    from edc.celery import app

    app.conf.task_default_queue = queue  # the subjects screened here queue edit checks too
    servers = [common.Server("edc.wsgi:application", queue, workers=WORKERS // INSTANCES,
                             PGAPPNAME=WEB, **PERSISTENT) for _ in range(INSTANCES)]
    workers = celery_workers(queue) if INSTANCES > 1 else []
    since = timezone.now()
    sampler = Sampler(os.environ["DATABASE_URL"], chain_tables())
    sampler.start()

    def enroll(pk: int) -> float:
        t0 = time.perf_counter()
        status, body = servers[pk % INSTANCES].request(
            "POST", f"/api/v1/subjects/{pk}/enroll/",
                                      f'{{"enrolled_on": "{ENROLL_DAY}"}}'.encode(), token)
        elapsed = time.perf_counter() - t0
        assert status == 200, (pk, status, body[:500])
        return elapsed

    alone, p50s, p99s, ratios50, ratios99, enrolled, cpus = [], [], [], [], [], [], []
    try:
        for pk in screened(trial, site, 2 * WORKERS):  # warm-up: every worker's first request
            enroll(pk)
        for _ in range(rounds):
            ids = screened(trial, site, ALONE + CONCURRENT)
            enrolled += ids
            solo = statistics.median(enroll(pk) for pk in ids[:ALONE])
            times: dict[int, float] = {}
            errors: list[str] = []
            barrier = threading.Barrier(CONCURRENT)

            def one(pk: int, times=times, errors=errors, barrier=barrier) -> None:
                barrier.wait()
                try:
                    times[pk] = enroll(pk)
                except (AssertionError, OSError) as exc:  # refused, or no answer in 60 s
                    errors.append(f"{type(exc).__name__}: {exc}")

            threads = [threading.Thread(target=one, args=(pk,)) for pk in ids[ALONE:]]
            sampler.running.set()
            cpu = cpu_now(servers, workers)
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            after = cpu_now(servers, workers)
            cpus.append({k: v / CONCURRENT for k, v in cpu_used(cpu, after).items()})
            sampler.running.clear()
            assert not errors, errors[:3]
            burst = sorted(times.values())
            p50 = statistics.median(burst)
            p99 = statistics.quantiles(burst, n=100, method="inclusive")[98]
            alone.append(solo)
            p50s.append(p50)
            p99s.append(p99)
            ratios50.append(p50 / solo)
            ratios99.append(p99 / solo)
            print(f"  round: alone p50 {solo * 1000:.0f} ms; 50 at once p50 {p50 * 1000:.0f} ms, "
                  f"p99 {p99 * 1000:.0f} ms, max {burst[-1] * 1000:.0f} ms; CPU per "
                  "enrollment during the burst: " + ", ".join(
                      f"{k} {v * 1000:.0f} ms" for k, v in cpus[-1].items()), flush=True)
        if workers:
            print(f"  tasks done by the {INSTANCES} Celery workers: {tasks_done(since)}")
    finally:
        sampler.stopped = True
        for process in (*servers, *workers):
            (process.stop if isinstance(process, common.Server) else process.terminate)()
        for worker in workers:
            worker.wait(timeout=30)
        common.drop_queue(queue)
    check(trial, enrolled)
    total = sum(sampler.counts.values()) or 1
    print("profile of the database's client backends during the bursts (web processes and, "
          "with two instances, the Celery workers; share of samples):")
    for what, n in sampler.counts.most_common(12):
        print(f"  {100 * n / total:5.1f}%  {what}")
    solo = statistics.median(alone) * 1000
    cpu = {k: statistics.median(c.get(k, 0) for c in cpus) * 1000 for k in cpus[0]}
    request = cpu["gunicorn"] + cpu.get("PostgreSQL for gunicorn", 0)
    queueing = -(-CONCURRENT // WORKERS)
    print(f"floors of the burst on this machine: the CPU of one enrollment's request "
          f"(gunicorn {cpu['gunicorn']:.0f} ms + its PostgreSQL backend "
          f"{cpu.get('PostgreSQL for gunicorn', 0):.0f} ms = {request:.0f} ms) x {CONCURRENT} / "
          f"{os.cpu_count()} CPUs = {CONCURRENT * request / os.cpu_count():.0f} ms before the "
          f"last can finish, the median {CONCURRENT * request / os.cpu_count() / 2:.0f} ms "
          f"(the Celery edit checks, {sum(v for k, v in cpu.items() if 'Celery' in k):.0f} ms "
          f"per enrollment in the burst, not counted); p99 <= 1 s needs "
          f"{CONCURRENT * request / 1000:.1f} CPUs for the requests alone. {WORKERS} sync "
          f"workers serve {queueing} requests each: the last waits {queueing} x one alone = "
          f"{queueing * solo:.0f} ms, the median {queueing / 2:.1f} x one alone")
    setup = f" ({INSTANCES} instances)" if INSTANCES > 1 else ""
    common.print_figures([
        common.Figure(f"enrollment{setup}, 50 at once: p50 / one alone",
                      statistics.median(p50s) * 1000, solo, "ms", statistics.median(ratios50), 2.0),
        common.Figure(f"enrollment{setup}, 50 at once: p99 / one alone",
                      statistics.median(p99s) * 1000, solo, "ms", statistics.median(ratios99), None,
                      f"p99 goal <= 1000 ms: {statistics.median(p99s) * 1000:.0f} ms"),
    ])


def check(trial, ids: list[int]) -> None:
    """Every subject enrolled once: its own slot and its own subject number."""
    from subjects.models import RandomizationSlot, Subject

    subjects = Subject.objects.filter(pk__in=ids)
    assert subjects.filter(status="enrolled").count() == len(ids)
    numbers = list(Subject.objects.filter(site__trial=trial).exclude(subject_number="")
                   .values_list("site_id", "subject_number"))
    assert len(numbers) == len(set(numbers)), "duplicate subject numbers"
    slots = RandomizationSlot.objects.filter(subject_id__in=ids)
    assert slots.count() == len(ids) == len(set(slots.values_list("sequence", flat=True)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
