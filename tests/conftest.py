"""Shared fixtures: real PostgreSQL (pytest-django), real Redis and a real Celery worker.

Database roles, as in production (README "Deployment roles"): the test database is created and
migrated by the owner role of ``DATABASE_URL`` (its migrate also creates and grants
``DATABASE_APP_ROLE``, see ``edc.core.dbroles``); then ``django_db_setup`` below switches the
``default`` connection to log in as the application role, so every test, the live server and
the Celery worker run the application as that least-privilege role. Only what the owner does
in production runs as the owner here: dropping the test database and the flush between
transactional tests (a TRUNCATE, which the application role may not do).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.test import TransactionTestCase
from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent
#: A queue of this test session's own, so stale messages of other runs are never consumed.
TEST_QUEUE = f"trialdesk-test-{uuid.uuid4().hex[:8]}"
WORKER_NAME = f"{TEST_QUEUE}@localhost"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The port of this session's in-process SMTP server (``smtp_server``); the worker sends there.
SMTP_PORT = _free_port()
_OWNER: dict[str, str] = {}


def _login(user: str, password: str) -> None:
    """Make the ``default`` connection (and new ones) log in as ``user``."""
    from django.db import connections

    conn = connections["default"]
    conn.close()
    conn.settings_dict.update({"USER": user, "PASSWORD": password})


@contextlib.contextmanager
def _as_owner():
    from django.conf import settings

    app = settings.DATABASES["default"]
    app_login = (app["USER"], app.get("PASSWORD") or "")
    _login(_OWNER["USER"], _OWNER["PASSWORD"])
    try:
        yield
    finally:
        _login(*app_login)


#: The template this session's test database was copied from (None: built by the migrations).
_TEMPLATE: dict[str, str | None] = {}


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix,
                                 django_db_use_migrations, django_db_blocker):
    """The test database is copied from the migrated template when one exists
    (``edc.core.template_database``): no migration state rendered on a repeat run."""
    from edc.core.template_database import use_template

    if django_db_use_migrations:
        with django_db_blocker.unblock():
            _TEMPLATE["used"] = use_template()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker, django_db_use_migrations,
                    django_db_keepdb):
    """pytest-django's test database (made by the owner), then the application role logs in.

    A database just built by every migration is first published as the template of later runs.
    """
    from django.conf import settings

    from edc.core.template_database import publish_template

    db = settings.DATABASES["default"]
    _OWNER.update({"USER": db.get("USER") or "postgres", "PASSWORD": db.get("PASSWORD") or ""})
    with django_db_blocker.unblock():
        if django_db_use_migrations and not django_db_keepdb and not _TEMPLATE.get("used"):
            publish_template()
        _login(settings.DATABASE_APP_ROLE, settings.DATABASE_APP_PASSWORD)
    yield
    with django_db_blocker.unblock():
        _login(_OWNER["USER"], _OWNER["PASSWORD"])


_flush = TransactionTestCase._fixture_teardown


def _deadlock(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, psycopg.errors.DeadlockDetected):
            return True
        error = error.__cause__ or error.__context__
    return False


def _flush_as_owner(self):
    """The flush between transactional tests, as the owner. PostgreSQL picks TRUNCATE as the
    victim when a task of the session's worker starts between the teardown's wait and the
    flush (seen once after the fifty-enrollment burst): the flush, rolled back whole, is
    run again once the worker is idle, at most three times."""
    for attempt in range(3):
        try:
            with _as_owner():
                _flush(self)
            return
        except Exception as error:
            if attempt == 2 or not _deadlock(error):
                raise
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not _worker_busy())


TransactionTestCase._fixture_teardown = _flush_as_owner


@contextlib.contextmanager
def owner_connection():
    """A separate autocommit connection of the owner role to the test database (a cursor)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    with psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432,
                         dbname=db["NAME"], user=_OWNER["USER"],
                         password=_OWNER["PASSWORD"] or None, autocommit=True) as conn, \
            conn.cursor() as cursor:
        yield cursor


@pytest.fixture(autouse=True, scope="session")
def _celery_test_queue():
    from edc.celery import app

    app.conf.task_default_queue = TEST_QUEUE
    yield


def _cache_of_this_worker() -> None:
    """Under pytest-xdist every worker process is a test session of its own (its own test
    database ``test_<name>_gwN``, queue, Celery worker and SMTP port); tests clear the cache, so
    each also gets its own Redis database: the broker's number + 1 + N, unless ``CACHE_URL`` is
    set. Run before any cache is opened (conftest import); subprocesses inherit ``CACHE_URL``."""
    from urllib.parse import urlsplit, urlunsplit

    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or os.environ.get("CACHE_URL"):
        return
    broker = urlsplit(settings.CELERY_BROKER_URL)
    number = int(broker.path.strip("/") or 0) + 1 + int(worker[2:])
    if number > 15:
        pytest.exit(f"pytest-xdist worker {worker} would need Redis database {number}: use "
                    "fewer workers (TEST_WORKERS), a lower broker database or CACHE_URL")
    url = urlunsplit(broker._replace(path=f"/{number}"))
    os.environ["CACHE_URL"] = url
    settings.CACHES["default"]["LOCATION"] = url


_cache_of_this_worker()


@pytest.fixture(autouse=True, scope="session")
def _cache_apart_from_broker():
    """Tests clear the cache (a Redis FLUSHDB): its database must not be the broker's. Give
    each test session a Redis database of its own with ``CACHE_URL``."""
    from urllib.parse import urlsplit

    from django.conf import settings

    def where(url: str) -> tuple:
        parts = urlsplit(url)
        return parts.hostname, parts.port or 6379, int(parts.path.strip("/") or 0)

    location = settings.CACHES["default"].get("LOCATION", "")
    if location.startswith("redis") and where(location) == where(settings.CELERY_BROKER_URL):
        pytest.exit(f"CACHE_URL {location} is the broker's database: choose another one")
    yield


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    """Passwords made in tests are hashed with MD5 (PBKDF2's million rounds took ~0.24 s for
    every ``make_user``, a few in most tests' set-up); the configured hashers stay behind it,
    so what they hashed still verifies. What a hasher costs is no test's subject (the policy
    and lock-out tests are about the password, not its hash). Processes the tests start
    (live servers are threads of this one; Celery workers and gunicorn check no passwords:
    API tokens, ``force_login``) keep the configured hashers."""
    from django.conf import settings
    from django.test import override_settings

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher",
                                             *settings.PASSWORD_HASHERS]):
        yield


@pytest.fixture
def api():
    return APIClient()


def worker_env(database_name: str, broker_url: str | None = None) -> dict[str, str]:
    from django.conf import settings

    db = settings.DATABASES["default"]
    env = dict(os.environ)
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    env["DATABASE_URL"] = f"postgres://{user}{password}@{host}:{port}/{database_name}"
    env["CELERY_TASK_DEFAULT_QUEUE"] = TEST_QUEUE
    env["CELERY_BROKER_URL"] = broker_url or settings.CELERY_BROKER_URL
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env.update(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
               EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(SMTP_PORT), EMAIL_TIMEOUT="3",
               NOTIFICATION_RETRY_BASE_SECONDS="1", NOTIFICATION_RETRY_MAX_SECONDS="2")
    return env


class Worker:
    """A real ``celery worker`` subprocess consuming this session's queue."""

    def __init__(self, database_name: str, queue: str = TEST_QUEUE, name: str = WORKER_NAME):
        self.database_name = database_name
        self.queue, self.name = queue, name
        self.process: subprocess.Popen | None = None
        self.log = ROOT / "var" / f"celery-worker-{queue}.log"

    def start(self, wait: bool = True) -> None:
        """Start the worker and (``wait``) return once it answers a ping (a solo worker busy
        with a task answers none: pass ``wait=False`` to watch the task instead)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "edc", "worker", "--pool=solo",
             "--without-mingle", "--without-gossip", "--without-heartbeat",
             "-Q", self.queue, "-n", self.name, "--loglevel=INFO"],
            cwd=ROOT, env=worker_env(self.database_name),
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        if not wait:
            return
        from edc.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited; see {self.log}")
            replies = app.control.ping(destination=[self.name], timeout=0.5)
            if replies:
                return
        raise RuntimeError(f"celery worker did not answer within 60 s; see {self.log}")

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a lost node would: no clean-up at all."""
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()


def switch_broker(url: str | None = None, **transport_options) -> None:
    """Point this process's Celery producer at another broker, or the same one with other
    transport options (``global_keyprefix``); no argument: back to the configured broker and
    options. Pooled connections are dropped.

    ``broker_write_url`` is what producers use (``broker_url`` itself cannot be overridden:
    CELERY_BROKER_URL in the environment wins)."""
    from django.conf import settings

    from edc.celery import app

    app.conf.broker_write_url = url
    app.conf.broker_transport_options = {**settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                                         **transport_options}
    # not app.close(): it deregisters the app, and tasks imported afterwards (a later test's
    # ``from edc.core.tasks import ...``) would then never be registered with it
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker_messages():
    """What this process sends goes to the real broker under a key prefix of its own, where
    no worker reads it; the fixture is a function returning each message sent there, oldest
    first, as (task name, args, ``pending_id``). The keys are deleted afterwards."""
    import base64
    import json

    import redis
    from django.conf import settings

    prefix = f"trialdesk-sent-{uuid.uuid4().hex[:8]}:"
    switch_broker(global_keyprefix=prefix)
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def sent() -> list[tuple]:
        messages = []
        for raw in reversed(client.lrange(prefix + TEST_QUEUE, 0, -1)):  # LPUSH: newest first
            message = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
            messages.append((message["headers"]["task"], args, kwargs["pending_id"]))
        return messages

    sent.prefix = prefix
    yield sent
    switch_broker()
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


#: The session's worker once started: from then on it consumes the work every test queues.
_session_worker: list = []


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """One real worker for the session, on the test database and the real Redis broker."""
    from django.db import connection

    worker = Worker(connection.settings_dict["NAME"])
    worker.start()
    _session_worker.append(worker)
    yield worker
    _session_worker.clear()
    worker.stop()


class SmtpServer:
    """A real SMTP server (aiosmtpd) in this process, on ``SMTP_PORT``; keeps what arrives."""

    def __init__(self, port: int):
        self.port = port
        self.received = []
        self.controller = None

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        from email import message_from_bytes, policy

        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages_for(self, notification_id: int) -> list:
        """The emails received for one notification (header ``X-Trialdesk-Notification``)."""
        return [m for m in self.received
                if m["X-Trialdesk-Notification"] == str(notification_id)]


@pytest.fixture
def smtp_server():
    server = SmtpServer(SMTP_PORT)
    server.start()
    yield server
    server.stop()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value (the task ran) or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """Before a test's database is flushed, let the session worker (once started, it consumes
    the work of every later test: edit checks are queued by every save) finish the work already
    sent to it: a task still running holds locks the flush needs (a deadlock with TRUNCATE).
    Work never sent to it (a broker outage test, a test that records the sends itself) is not
    waited for: the wait lasts while :func:`_worker_busy`."""
    marker = item.get_closest_marker("django_db")
    commits = marker is not None and marker.kwargs.get("transaction", False)
    if "celery_worker" in getattr(item, "fixturenames", ()) or (_session_worker and commits):
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not _worker_busy())
    yield


def _later(eta: str | None) -> bool:
    """A retry's countdown has more than a second to run (the flush deletes its pending row:
    when it fires, it finds nothing to do)."""
    from datetime import datetime, timedelta

    return eta is not None and datetime.fromisoformat(eta).timestamp() > (
        datetime.now().astimezone() + timedelta(seconds=1)).timestamp()


def _worker_busy() -> bool:
    """The session's worker has work it has not finished: messages wait in its queue, it
    holds one it took but has not started (kombu's ``unacked`` hash: a prefetched message),
    a task it started is not done, or another connection to the test database is inside a
    transaction (a task between its ack and its first write)."""
    import json

    import redis
    from django.conf import settings
    from django.db import connection

    from edc.core.models import PendingTask

    with redis.Redis.from_url(settings.CELERY_BROKER_URL) as broker:
        if broker.llen(TEST_QUEUE):
            return True
        for raw in broker.hvals("unacked"):
            message, _exchange, routing_key = json.loads(raw)
            if routing_key == TEST_QUEUE and not _later(message["headers"].get("eta")):
                return True
    if PendingTask.objects.filter(state="queued", started_at__isnull=False).exists():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname ="
                       " current_database() AND pid <> pg_backend_pid()"
                       " AND xact_start IS NOT NULL)")
        return cursor.fetchone()[0]
