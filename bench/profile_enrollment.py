"""In-process profile of one enrollment through the API (not a test, not timed).

Usage::

    .venv/bin/python bench/profile_enrollment.py [--sql] [--top N] [--sort KEY]

On ``bench_enrollment.py``'s database (``BENCH_ENROL_DATABASE_URL``, built by it): screens 22
new subjects, enrolls one through ``POST /api/v1/subjects/<id>/enroll/`` (Django's test client,
the bench's knox token) with ``CaptureQueriesContext`` (statements and their time; ``--sql``
prints them, ``SQLW=<n>`` characters of each), then the CPU of this process for 10 more (not
profiled) and a ``cProfile`` of 10 more: the ``--top`` functions by ``--sort`` (cumulative
time by default); ``--cpu`` times the profile by this process's CPU (``time.process_time``), so
the waits for PostgreSQL drop out of it.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_enrollment  # noqa: E402  (the enrollment bench's database and data helpers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative", help="pstats sort key (tottime...)")
    parser.add_argument("--cpu", action="store_true",
                        help="profile this process's CPU time (time.process_time), not wall time")
    args = parser.parse_args()
    trial, site, token = bench_enrollment.prepare()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    ids = bench_enrollment.screened(trial, site, 22)
    body = json.dumps({"enrolled_on": str(bench_enrollment.ENROLL_DAY)})

    def enroll(pk: int) -> None:
        response = client.post(f"/api/v1/subjects/{pk}/enroll/", body,
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Token {token}")
        assert response.status_code == 200, response.content[:300]

    enroll(ids[0])  # warm-up
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        enroll(ids[1])
    wall = time.perf_counter() - started
    in_sql = sum(float(q["time"]) for q in queries)
    print(f"one enrollment: {len(queries)} SQL statements, {wall * 1000:.1f} ms, of which "
          f"{in_sql * 1000:.1f} ms waiting for PostgreSQL (statements as the client times them)")
    if args.sql:
        width = int(os.environ.get("SQLW", "160"))
        for query in queries:
            print(f"   {float(query['time']) * 1000:6.1f} ms  {query['sql'][:width]}")
    cpu, started = time.process_time(), time.perf_counter()
    for pk in ids[2:12]:
        enroll(pk)
    print(f"10 more: {(time.process_time() - cpu) * 100:.1f} ms of this process's CPU and "
          f"{(time.perf_counter() - started) * 100:.1f} ms wall per enrollment (not profiled)")
    profile = cProfile.Profile(time.process_time) if args.cpu else cProfile.Profile()
    profile.runcall(lambda: [enroll(pk) for pk in ids[12:]])
    stats = pstats.Stats(profile, stream=sys.stdout)
    print(f"{stats.total_tt / 10 * 1000:.1f} ms per enrollment (10 profiled)")
    stats.sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
