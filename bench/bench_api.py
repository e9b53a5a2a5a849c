"""API benchmark (not a test): list pages and AE create against bare Django views.

Usage::

    .venv/bin/python bench/bench_api.py

Same database and synthetic trial as ``bench_exports.py`` (``bench/common.py``). One gunicorn
server (2 sync workers, ``DEBUG=false``) serves the product's URLs plus, from this module's
URLconf only, bare Django views that read the same rows with ``.values()`` (and, for AE
create, do the same three inserts with the ORM): no DRF, no authentication, no scoping, no
serializer. Each pair is timed interleaved, one request at a time (``common.interleaved``).

* AE list, 100 a page, as a data manager (every site) and as a site investigator (one site):
  the bare view returns the same page: the AE columns with the term, its grade episodes and
  attributions (three ``.values()`` queries);
* subjects, visits and QLQ-C30 forms, 100 a page, as the data manager: the bare view returns
  the page's columns (QLQ-C30: with the scores);
* AE create (serializer, CTCAE and window validation, scoping, audit trail, outbox row) as an
  investigator vs the bare view's three inserts, into a second trial.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

PAGE = 100


# --------------------------------------------------------------------------- bare views


def _json(rows):
    from django.core.serializers.json import DjangoJSONEncoder
    from django.http import JsonResponse

    return JsonResponse({"results": rows}, encoder=DjangoJSONEncoder)


def bare_ae_list(request):
    """The page of AEs with their term, grade episodes and attributions, by ``.values()``."""
    from adverse_events.models import AdverseEvent, Attribution, GradeEpisode

    rows = AdverseEvent.objects.filter(subject__trial_id=int(request.GET["trial"]))
    if "site" in request.GET:
        rows = rows.filter(subject__site_id=int(request.GET["site"]))
    page = list(rows.order_by("-id").values(
        *(f.attname for f in AdverseEvent._meta.concrete_fields),
        "term__term", "term__meddra_code")[:PAGE])
    by_id = {row["id"]: row for row in page}
    for row in page:
        row["grade_episodes"], row["attributions"] = [], []
    for episode in GradeEpisode.objects.filter(adverse_event_id__in=by_id,
                                               retired_at__isnull=True).values(
            "adverse_event_id", "id", "grade", "start_date", "end_date"):
        by_id[episode.pop("adverse_event_id")]["grade_episodes"].append(episode)
    for attribution in Attribution.objects.filter(adverse_event_id__in=by_id,
                                                  retired_at__isnull=True).values(
            "adverse_event_id", "intervention_id", "intervention__code", "level"):
        by_id[attribution.pop("adverse_event_id")]["attributions"].append(attribution)
    return _json(page)


def _bare_page(model, trial_lookup: str, extra: tuple[str, ...] = ()):
    def view(request):
        rows = model.objects.filter(**{trial_lookup: int(request.GET["trial"])})
        return _json(list(rows.order_by("-id").values(
            *(f.attname for f in model._meta.concrete_fields), *extra)[:PAGE]))
    return view


def bare_ae_create(request):
    """The same three inserts as the API's AE create, without validation, serializers,
    permissions, scoping or the outbox; with one check of the locks and signatures for the
    three, as the API's create does (``checked_together``)."""
    from django.db import transaction
    from django.http import JsonResponse

    from adverse_events.models import AdverseEvent, Attribution, GradeEpisode
    from edc.core.audit import checked_together

    data = json.loads(request.body)
    episode = data["grade_episodes"][0]
    with transaction.atomic(), checked_together():
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
    """``urlpatterns`` (ROOT_URLCONF of the bench server): the product's plus the bare views."""
    if name == "urlpatterns":
        from django.urls import path
        from django.views.decorators.csrf import csrf_exempt

        from edc.urls import urlpatterns as product
        from subjects.models import Subject
        from visits import qlq_c30
        from visits.models import QlqC30Form, Visit

        return [
            path("bench/ae-list/", bare_ae_list),
            path("bench/subject-list/", _bare_page(Subject, "trial_id")),
            path("bench/visit-list/", _bare_page(Visit, "subject__trial_id")),
            path("bench/qlq-list/", _bare_page(QlqC30Form, "subject__trial_id", tuple(
                f"score__{scale}" for scale in qlq_c30.SCALES))),
            path("bench/ae-create/", csrf_exempt(bare_ae_create)),
            *product]
    raise AttributeError(name)


_application = None


def application(environ, start_response):
    """WSGI entry of the bench server (``gunicorn bench_api:application``)."""
    global _application
    if _application is None:
        from django.conf import settings
        from django.core.wsgi import get_wsgi_application

        _application = get_wsgi_application()
        settings.ROOT_URLCONF = "bench_api"
    return _application(environ, start_response)


# ------------------------------------------------------------------------------ measures


def figures(tokens: dict[str, str], only: str = "") -> list[common.Figure]:
    """Every figure (or those whose label contains ``only``)."""
    from adverse_events.models import CtcaeTerm
    from subjects.models import Site, Subject
    from trials.models import Trial

    main = Trial.objects.get(registry_id=common.MAIN)
    site = Site.objects.get(trial=main, code="S01")
    create_trial = Trial.objects.get(registry_id=common.CREATE)
    subjects = list(Subject.objects.filter(trial=create_trial).values_list("pk", flat=True))
    agent = create_trial.current_version().interventions.get(code="MSC-L").pk
    fatigue = CtcaeTerm.objects.get(meddra_code="10016256").pk
    queue = f"bench-api-{uuid.uuid4().hex[:8]}"
    server = common.Server("bench_api:application", queue, chdir=Path(__file__).parent)

    def get(path: str, token: str | None = None):
        def call():
            status, body = server.request("GET", path, token=token)
            assert status == 200, (path, status, body[:300])
        return call

    counter = iter(range(10**6))

    def create(path: str, token: str | None = None):
        def call():
            i = next(counter)
            onset = dt.date(2024, 2, 1) + dt.timedelta(days=i % 300)
            body = json.dumps({
                "subject": subjects[i % len(subjects)], "term": fatigue,
                "onset_date": onset.isoformat(), "resolution_date": onset.isoformat(),
                "grade_episodes": [{"grade": 1, "start_date": onset.isoformat(),
                                    "end_date": onset.isoformat()}],
                "attributions": [{"intervention": agent, "level": "possible"}],
                "action_taken": "dose_not_changed", "outcome": "recovered"}).encode()
            status, answer = server.request("POST", path, body, token)
            assert status == 201, (path, status, answer[:300])
        return call

    dm, site_pi = tokens["bench_dm"], tokens["bench_site_pi"]
    t = main.pk
    measures = [
        ("AE list, 100/page, all sites (API / .values())",
         get(f"/api/v1/adverse-events/?page_size={PAGE}&trial={t}", dm),
         get(f"/bench/ae-list/?trial={t}"), 1.5),
        ("AE list, 100/page, one site (API / .values())",
         get(f"/api/v1/adverse-events/?page_size={PAGE}", site_pi),
         get(f"/bench/ae-list/?trial={t}&site={site.pk}"), 1.5),
        ("subject list, 100/page (API / .values())",
         get(f"/api/v1/subjects/?page_size={PAGE}&trial={t}", dm),
         get(f"/bench/subject-list/?trial={t}"), 1.5),
        ("visit list, 100/page (API / .values())",
         get(f"/api/v1/visits/?page_size={PAGE}&subject__trial={t}", dm),
         get(f"/bench/visit-list/?trial={t}"), 1.5),
        ("QLQ-C30 form list, 100/page (API / .values())",
         get(f"/api/v1/qlq-c30-forms/?page_size={PAGE}", dm),
         get(f"/bench/qlq-list/?trial={t}"), 1.5),
        ("AE create (API / bare 3 inserts)",
         create("/api/v1/adverse-events/", tokens["bench_pi"]), create("/bench/ae-create/"), 1.3),
    ]
    try:
        return [common.interleaved(label, project, floor, goal=goal)
                for label, project, floor, goal in measures if only in label]
    finally:
        server.stop()
        common.drop_queue(queue)


def main() -> None:
    tokens = common.prepare()
    common.print_figures(figures(tokens, sys.argv[1] if len(sys.argv) > 1 else ""))


if __name__ == "__main__":
    main()
