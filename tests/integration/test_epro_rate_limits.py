"""ePRO rate limits hold across web processes (issue 21): the counters live in a Redis shared
by every process (``settings.CACHES``: ``CACHE_URL``, else the broker's Redis with the next
database number), so a patient or an attacker with several processes behind a load balancer
gets the limit once, not once per process."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.cache import cache

from tests.conftest import ROOT, worker_env

pytestmark = pytest.mark.django_db

#: Another process: guessed tokens through the whole Django stack (throttle, view), one line
#: with the status of each answer.
OTHER_PROCESS = """
import django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
client = Client()
print(" ".join(str(client.get(f"/epro/{'C' * 42}{n}/").status_code) for n in range(3)))
"""


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def test_two_processes_share_one_patient_page_limit(client, settings):
    from django.conf import settings as live

    settings.EPRO_PAGE_RATE = "4/min"
    here = [client.get(f"/epro/{'B' * 42}{n}/").status_code for n in range(2)]
    assert here == [404, 404]
    env = {**worker_env(live.DATABASES["default"]["NAME"]), "EPRO_PAGE_RATE": "4/min",
           "DJANGO_SETTINGS_MODULE": "edc.settings"}
    other = subprocess.run([sys.executable, "-c", OTHER_PROCESS], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0, other.stderr[-2000:]
    assert other.stdout.split() == ["404", "404", "429"]  # 2 here + 2 there, then refused
    assert client.get(f"/epro/{'B' * 42}9/").status_code == 429  # and here too


def test_the_default_cache_is_the_brokers_redis_with_the_next_database():
    env = {**worker_env("unused"), "CELERY_BROKER_URL": "redis://redis.example:6380/4",
           "DJANGO_SETTINGS_MODULE": "edc.settings"}
    env.pop("CACHE_URL", None)
    shown = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import "
         "settings as s; print(s.CACHES['default']['BACKEND'], s.CACHES['default']['LOCATION'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert shown.stdout.split() == ["django.core.cache.backends.redis.RedisCache",
                                    "redis://redis.example:6380/5"]
