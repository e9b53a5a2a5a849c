"""Safety summary tables (small: computed in SQL, returned whole).

* AE incidence by arm x MedDRA SOC x CTCAE term x worst grade: the number of subjects whose
  worst CTCAE v5.0 grade for the term is that grade (each subject counted once per term, at
  its worst grade), the number of events, the arm's number of subjects and the percentage
  (ICH E3 12.2.2 style incidence table). Arms are shown as the user may see them (neutral
  labels in a blinded trial without unblinded access).
* DLT/TI by dose level and cohort: subjects, subjects with an effective DLT (resp. TI) flag
  and the number of AEs flagged (effective = the investigator's override when set, else the
  protocol rule's result).

The site scope and the AE onset date range apply to both.
"""

from __future__ import annotations

from django.db import connection

from trials.models import DoseLevel, Trial

from .engine import Spec, T, date_filter, subject_filter, trial_context

INCIDENCE_COLUMNS = ("arm", "soc", "term", "meddra_code", "worst_grade", "subjects", "events",
                     "arm_subjects", "percent")
DLT_COLUMNS = ("dose_level", "cohort", "subjects", "subjects_with_dlt", "dlt_events",
               "subjects_with_ti", "ti_events")


def _fetch(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ae_incidence(spec: Spec) -> list[dict]:
    trial = Trial.objects.get(pk=spec.trial_id)
    arms, _ = trial_context(trial, spec)
    params = spec.params
    per_subject = (
        f"SELECT s.arm_id, term.soc, term.term, term.meddra_code, ae.subject_id, "
        f"max(ae.grade) AS worst, count(*) AS events FROM {T['ae']} ae "
        f"JOIN {T['subject']} s ON s.id = ae.subject_id "
        f"JOIN {T['term']} term ON term.id = ae.term_id "
        f"WHERE ae.retired_at IS NULL AND {subject_filter('s')}"
        f"{date_filter(spec, 'ae.onset_date')} "
        "GROUP BY 1, 2, 3, 4, 5")
    rows = _fetch(f"SELECT arm_id, soc, term, meddra_code, worst, count(*), sum(events) "
                  f"FROM ({per_subject}) w GROUP BY 1, 2, 3, 4, 5", params)
    denominators: dict[str | None, int] = {}
    for arm_id, n in _fetch(f"SELECT s.arm_id, count(*) FROM {T['subject']} s "
                            f"WHERE {subject_filter('s')} GROUP BY 1", params):
        label = arms[arm_id].label if arm_id in arms else None
        denominators[label] = denominators.get(label, 0) + n
    merged: dict[tuple, list[int]] = {}
    for arm_id, soc, term, code, worst, subjects, events in rows:
        label = arms[arm_id].label if arm_id in arms else None
        key = (label, soc, term, code, worst)
        found = merged.setdefault(key, [0, 0])
        found[0] += subjects
        found[1] += int(events)
    table = []
    for (label, soc, term, code, worst), (subjects, events) in sorted(
            merged.items(), key=lambda kv: (kv[0][0] or "", kv[0][1], kv[0][2], kv[0][4] or 0)):
        n = denominators.get(label, 0)
        table.append({"arm": label, "soc": soc, "term": term, "meddra_code": code,
                      "worst_grade": worst, "subjects": subjects, "events": events,
                      "arm_subjects": n,
                      "percent": round(100.0 * subjects / n, 1) if n else None})
    return table


def dlt_summary(spec: Spec) -> list[dict]:
    trial = Trial.objects.get(pk=spec.trial_id)
    levels = {d.pk: d for d in DoseLevel.objects.filter(protocol_version__trial=trial)}
    flagged = (
        f"SELECT f.subject_id, f.kind, f.adverse_event_id FROM {T['flag']} f "
        f"JOIN {T['ae']} ae ON ae.id = f.adverse_event_id "
        "WHERE f.retired_at IS NULL AND ae.retired_at IS NULL "
        f"AND coalesce(f.override, f.computed){date_filter(spec, 'ae.onset_date')}")
    rows = _fetch(
        "SELECT s.dose_level_id, s.cohort, count(DISTINCT s.id), "
        "count(DISTINCT fl.subject_id) FILTER (WHERE fl.kind = 'DLT'), "
        "count(DISTINCT fl.adverse_event_id) FILTER (WHERE fl.kind = 'DLT'), "
        "count(DISTINCT fl.subject_id) FILTER (WHERE fl.kind = 'TI'), "
        "count(DISTINCT fl.adverse_event_id) FILTER (WHERE fl.kind = 'TI') "
        f"FROM {T['subject']} s LEFT JOIN ({flagged}) fl ON fl.subject_id = s.id "
        f"WHERE {subject_filter('s')} AND s.arm_id IS NOT NULL GROUP BY 1, 2", spec.params)

    def order(row):
        level = levels.get(row[0])
        return (level.order if level else -1, row[1] if row[1] is not None else -1)

    return [{"dose_level": str(levels[r[0]]) if r[0] in levels else None, "cohort": r[1],
             "subjects": r[2], "subjects_with_dlt": r[3], "dlt_events": r[4],
             "subjects_with_ti": r[5], "ti_events": r[6]} for r in sorted(rows, key=order)]


SUMMARIES = {"ae_incidence": (ae_incidence, INCIDENCE_COLUMNS),
             "dlt_summary": (dlt_summary, DLT_COLUMNS)}
