"""The adverse events' part of the admin's subject page (``subjects.page_sections``): each AE
with its current grade episodes, attributions (products masked for blinded users), toxicity
flags and SAE clock (``AdverseEvent.sae_status``, the one home of the rule)."""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils import timezone

from subjects.page_sections import SubjectPageSection

from .models import Attribution, GradeEpisode


class AdverseEvents(SubjectPageSection):
    def overview(self, subject, user, mask) -> dict:
        now = timezone.now()
        adverse_events = list(subject.adverse_events.select_related("term").prefetch_related(
            Prefetch("grade_episodes", GradeEpisode.objects.filter(retired_at__isnull=True)),
            Prefetch("attributions", Attribution.objects.filter(retired_at__isnull=True)
                     .select_related("intervention")),
            "toxicity_flags",
        ).order_by("onset_date", "pk"))
        for ae in adverse_events:
            ae.sae_clock = ae.sae_status(now) if ae.serious and ae.aware_at else "not serious"
            ae.shown_attributions = [f"{mask(a.intervention.code)}: {a.level}"
                                     for a in ae.attributions.all()]
            ae.flags = [{"kind": f.kind, "rule": f.rule_code, "effective": f.effective,
                         "overridden": f.override is not None, "reason": mask(f.reason),
                         "pk": f.pk} for f in ae.toxicity_flags.all()]
        return {
            "adverse_events": adverse_events,
            "flag_count": sum(1 for ae in adverse_events for f in ae.flags if f["effective"]),
        }
