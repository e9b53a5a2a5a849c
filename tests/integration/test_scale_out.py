"""Scale-out (issue 19): two web instances and two Celery workers on one PostgreSQL.

Real processes: two gunicorn instances (2 sync workers each) and two ``celery worker``
processes, all on the test database and the real Redis broker, with a queue of this test's
own. Concurrent enrollments go to both instances alternately; every one must succeed with its
own allocation slot and subject number, every slot of the list's head used once, each
subject's schedule built once, and the edit checks each enrollment queued (outbox) run
exactly once across the two workers.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import subprocess
import sys
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection

from subjects.models import RandomizationSlot, Subject
from tests.conftest import ROOT, Worker, _free_port, wait_for, worker_env
from tests.factories import load_seed_trial, make_eligible, make_subject, make_user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery_worker,
              pytest.mark.scale_out]

N = 20
ENROLL_DAY = dt.date(2025, 3, 3)
EDIT_CHECKS = "data_management.tasks.run_edit_checks"


class Web:
    """``gunicorn edc.wsgi`` (2 sync workers) on a free port of the loopback."""

    def __init__(self, env: dict[str, str]):
        self.port = _free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "edc.wsgi:application", "--workers", "2",
             "--bind", f"127.0.0.1:{self.port}", "--log-level", "warning", "--timeout", "120"],
            cwd=ROOT, env=env)

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

    def wait_ready(self) -> None:
        def up():
            assert self.process.poll() is None, "gunicorn exited"
            try:
                return self.request("GET", "/health/")[0] == 200
            except OSError:
                return False
        wait_for(up, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture
def cluster():
    """Two web instances and two workers sharing the test database and a private queue."""
    queue = f"trialdesk-scale-{uuid.uuid4().hex[:8]}"
    env = dict(worker_env(connection.settings_dict["NAME"]), CELERY_TASK_DEFAULT_QUEUE=queue,
               LOG_LEVEL="WARNING")
    webs = [Web(env), Web(env)]
    workers = [Worker(connection.settings_dict["NAME"], queue=queue, name=f"{queue}-{i}@localhost")
               for i in (1, 2)]
    for i, worker in enumerate(workers, 1):
        worker.log = worker.log.with_name(f"celery-worker-{queue}-{i}.log")
    try:
        for worker in workers:
            worker.start(wait=False)
        for web in webs:
            web.wait_ready()
        _ping(workers)
        yield webs, workers
    finally:
        for process in (*webs, *workers):
            process.stop()


def _ping(workers) -> None:
    from edc.celery import app

    names = {w.name for w in workers}
    wait_for(lambda: names <= {name for reply in app.control.ping(
        destination=list(names), timeout=0.5) for name in reply}, timeout=60)


def test_concurrent_enrollments_through_two_instances_and_two_workers(cluster):
    webs, workers = cluster
    trial = load_seed_trial("NCT05962450")  # 1:1 permuted blocks, one list
    site = trial.sites.first()
    from knox.models import AuthToken

    token = AuthToken.objects.create(user=make_user("scale_pi", "investigator",
                                                    (trial, site)))[1]
    subjects = [make_eligible(make_subject(trial, site, age_at_consent=55)).pk
                for _ in range(N)]
    from edc.core.models import PendingTask

    before = PendingTask.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    results: dict[int, tuple[int, bytes]] = {}
    barrier = threading.Barrier(N)

    def enroll(i: int, pk: int) -> None:
        barrier.wait()
        results[pk] = webs[i % 2].request(
            "POST", f"/api/v1/subjects/{pk}/enroll/",
            json.dumps({"enrolled_on": ENROLL_DAY.isoformat()}).encode(), token)

    threads = [threading.Thread(target=enroll, args=(i, pk)) for i, pk in enumerate(subjects)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    errors = {pk: (status, body[:200]) for pk, (status, body) in results.items() if status != 200}
    assert len(results) == N and not errors, errors
    enrolled = Subject.objects.filter(pk__in=subjects, status="enrolled")
    numbers = list(enrolled.values_list("subject_number", flat=True))
    assert len(numbers) == N and len(set(numbers)) == N and "" not in numbers
    slots = RandomizationSlot.objects.filter(trial=trial, subject__isnull=False)
    assert sorted(slots.values_list("sequence", flat=True)) == list(range(1, N + 1))
    assert sorted(slots.values_list("subject_id", flat=True)) == sorted(subjects)
    for subject in enrolled.select_related("randomization_slot"):
        assert subject.arm_id == subject.randomization_slot.arm_id
    visits = Counter(enrolled.values_list("visits__subject_id", "visits__code"))
    assert visits and max(visits.values()) == 1  # each schedule built once
    per_subject = Counter(s for s, _ in visits)
    assert set(per_subject) == set(subjects)
    arms = dict(enrolled.values_list("pk", "arm_id"))
    per_arm = {arm: {per_subject[pk] for pk in subjects if arms[pk] == arm}
               for arm in set(arms.values())}
    assert all(len(counts) == 1 for counts in per_arm.values()), per_arm  # one plan per arm

    checks = PendingTask.objects.filter(pk__gt=before, task_name=EDIT_CHECKS)
    wait_for(lambda: checks.count() == N and not checks.exclude(state="done").exists(),
             timeout=120)  # each run takes 0.5-3 s on a loaded 2-core machine
    assert sorted(a[0] for a in checks.values_list("args", flat=True)) == sorted(subjects)
    assert set(checks.values_list("attempts", flat=True)) == {1}
    done = re.compile(rf"Task {re.escape(EDIT_CHECKS)}\[([0-9a-f-]+)\] succeeded")
    ran = {w.name: done.findall(w.log.read_text()) for w in workers}
    ids = [task for tasks in ran.values() for task in tasks]
    assert len(ids) == len(set(ids)) == N, {name: len(t) for name, t in ran.items()}
    assert all(ran.values()), {name: len(t) for name, t in ran.items()}  # both workers worked
