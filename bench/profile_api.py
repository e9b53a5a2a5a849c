"""In-process profile of the API requests ``bench_api.py`` times (not a test, not timed).

Usage::

    .venv/bin/python bench/profile_api.py [label] [--sql] [--top N] [--sort tottime]

On the bench database (``BENCH_DATABASE_URL``, built by ``bench_api.py``), through Django's
test client with a knox token (as the bench's gunicorn requests are): for each request kind
(or those whose label contains ``label``), the SQL statements of one request
(``CaptureQueriesContext``; ``--sql`` prints them) and a ``cProfile`` of 20 more, the ``--top``
functions by cumulative time. The tokens it makes are deleted afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402, F401  (the bench database's settings)


def cases(client, tokens):
    from adverse_events.models import CtcaeTerm
    from subjects.models import Subject
    from trials.models import Trial

    main = Trial.objects.get(registry_id=common.MAIN).pk
    create_trial = Trial.objects.get(registry_id=common.CREATE)
    subjects = list(Subject.objects.filter(trial=create_trial).values_list("pk", flat=True))
    agent = create_trial.current_version().interventions.get(code="MSC-L").pk
    fatigue = CtcaeTerm.objects.get(meddra_code="10016256").pk
    counter = iter(range(10**6))

    def get(url, who):
        def call():
            response = client.get(url, HTTP_AUTHORIZATION=f"Token {tokens[who]}")
            assert response.status_code == 200, response.content[:300]
        return call

    def create():
        i = next(counter)
        onset = (dt.date(2024, 2, 1) + dt.timedelta(days=i % 300)).isoformat()
        body = {"subject": subjects[i % len(subjects)], "term": fatigue, "onset_date": onset,
                "resolution_date": onset, "action_taken": "dose_not_changed",
                "outcome": "recovered",
                "grade_episodes": [{"grade": 1, "start_date": onset, "end_date": onset}],
                "attributions": [{"intervention": agent, "level": "possible"}]}
        response = client.post("/api/v1/adverse-events/", json.dumps(body),
                               content_type="application/json",
                               HTTP_AUTHORIZATION=f"Token {tokens['bench_pi']}")
        assert response.status_code == 201, response.content[:300]

    return {
        "AE list, all sites": get(f"/api/v1/adverse-events/?page_size=100&trial={main}",
                                  "bench_dm"),
        "AE list, one site": get("/api/v1/adverse-events/?page_size=100", "bench_site_pi"),
        "subject list": get(f"/api/v1/subjects/?page_size=100&trial={main}", "bench_dm"),
        "subject list, page of 1": get(f"/api/v1/subjects/?page_size=1&trial={main}",
                                       "bench_dm"),
        "visit list": get(f"/api/v1/visits/?page_size=100&subject__trial={main}", "bench_dm"),
        "QLQ-C30 form list": get("/api/v1/qlq-c30-forms/?page_size=100", "bench_dm"),
        "AE create": create,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("label", nargs="?", default="")
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative", help="pstats key, e.g. tottime")
    args = parser.parse_args()
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from knox.models import AuthToken

    made, tokens = [], {}
    for name in ("bench_dm", "bench_site_pi", "bench_pi"):
        row, tokens[name] = AuthToken.objects.create(user=User.objects.get(username=name))
        made.append(row.pk)
    try:
        for label, call in cases(Client(), tokens).items():
            if args.label not in label:
                continue
            call()  # warm-up
            with CaptureQueriesContext(connection) as queries:
                call()
            print(f"=== {label}: {len(queries)} SQL statements")
            if args.sql:
                for query in queries:
                    print("   ", query["sql"][:int(__import__("os").environ.get("SQLW", "200"))])
            profile = cProfile.Profile()
            profile.runcall(lambda c=call: [c() for _ in range(20)])
            stats = pstats.Stats(profile, stream=sys.stdout)
            print(f"    {stats.total_tt / 20 * 1000:.1f} ms per request (profiled)")
            stats.sort_stats(args.sort).print_stats(args.top)
    finally:
        AuthToken.objects.filter(pk__in=made).delete()


if __name__ == "__main__":
    main()
