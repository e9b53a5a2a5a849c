"""Bulk QLQ-C30 rescoring (``visits.rescoring``) writes only the results that changed."""

from __future__ import annotations

import datetime as dt

import numpy
import pytest
from django.core.management import call_command
from django.db import connection

from edc.core.audit import change_reason
from tests.factories import load_seed_trial, make_subject, make_user
from visits import qlq_c30, rescoring
from visits.models import (
    ComputationState,
    QlqC30Deterioration,
    QlqC30Form,
    QlqC30Score,
    QlqC30SubjectDeterioration,
    Visit,
)

pytestmark = pytest.mark.django_db

DAY0 = dt.date(2025, 1, 6)


@pytest.fixture
def forms():
    """Four forms of one subject: all answers 1 (PF2 100), but the last has q1-q5 at 4
    (PF2 0: one deteriorated assessment, not confirmed)."""
    trial = load_seed_trial("NCT05962450")  # its protocol schedules the QLQ-C30
    subject = make_subject(trial, trial.sites.first(), day0=DAY0, enrolled_on=DAY0)
    result = []
    for i in range(4):
        visit = Visit.objects.create(subject=subject, code=f"A{i}", kind="assessment",
                                     target_date=DAY0 + dt.timedelta(weeks=8 * i),
                                     qlq_c30_due=True)
        answers = dict.fromkeys(qlq_c30.ITEM_KEYS, 1)
        if i == 3:
            answers.update(q1=4, q2=4, q3=4, q4=4, q5=4)
        result.append(QlqC30Form.objects.create(subject=subject, visit=visit, mode="paper",
                                                completion_date=visit.target_date, **answers))
    return result


def stored(subject_id: int) -> tuple[dict, dict]:
    scores = {s.form_id: (s.as_dict(), s.state, s.computed_at)
              for s in QlqC30Score.objects.filter(form__subject_id=subject_id)}
    ttd = {t.scale: ((t.event, t.event_date, t.confirm_date, t.censor_date, t.days),
                     t.computed_at)
           for t in QlqC30Deterioration.objects.filter(subject_id=subject_id)}
    return scores, ttd


def test_a_rescoring_after_one_changed_answer_rewrites_exactly_what_changed(forms):
    subject = forms[0].subject
    registry_id = subject.trial.registry_id
    call_command("rescore_qlq_c30", registry_id)
    scores, ttd = stored(subject.pk)
    assert len(scores) == 4 and len(ttd) == len(qlq_c30.SCALES)
    assert ttd["PF2"][0][0] is False  # PF2 0 at the last form only: not confirmed

    call_command("rescore_qlq_c30", registry_id)  # nothing changed: nothing rewritten
    assert stored(subject.pk) == (scores, ttd)

    # q1 4 instead of 1 at the third form: PF2 = (1 - (8/5 - 1) / 3) * 100 = 80, 20 points
    # worse than baseline and confirmed by the last form (PF2 0): a PF2 event at A2.
    changed = forms[2]
    changed.q1 = 4
    with change_reason("transcription error"):
        changed.save()
    call_command("rescore_qlq_c30", registry_id)
    scores_after, ttd_after = stored(subject.pk)

    assert {f for f in scores if scores_after[f][2] != scores[f][2]} == {changed.pk}
    assert scores_after[changed.pk][0] == qlq_c30.score(changed.responses())
    assert scores_after[changed.pk][0]["PF2"] == pytest.approx(80.0)
    assert scores_after[changed.pk][1] == ComputationState.DONE
    for form_id in scores.keys() - {changed.pk}:
        assert scores_after[form_id] == scores[form_id]
    moved = {scale for scale in ttd if ttd_after[scale][0] != ttd[scale][0]}
    assert "PF2" in moved and "SUM" not in moved  # SUM 98.5 then 92.3: not 10 points
    assert ttd_after["PF2"][0] == (True, changed.completion_date, forms[3].completion_date,
                                   None, (changed.completion_date - DAY0).days)
    for scale in ttd:  # a row is rewritten (new computed_at) exactly when its result moved
        assert (ttd_after[scale][1] != ttd[scale][1]) == (scale in moved), scale


def test_a_pending_score_row_is_updated_and_one_created_meanwhile_is_not_duplicated(forms):
    """A form whose score row exists (pending, as the API leaves it) is updated; a row that
    appears between the read and the write (another transaction scoring the same form) makes
    the plain COPY fail, and the batch falls back to the upsert: one row per form."""
    QlqC30Score.objects.create(form=forms[0])  # pending, no scores
    call_command("rescore_qlq_c30", forms[0].subject.trial.registry_id)
    assert QlqC30Score.objects.get(form=forms[0]).state == ComputationState.DONE

    values = qlq_c30.score(forms[1].responses())
    values["SUM"] = None  # differs from the stored row: the fallback must write it
    row = (forms[1].pk, *(values[s] for s in qlq_c30.SCALES), ComputationState.DONE, "",
           dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    with connection.cursor() as cursor:  # forms[1] already has its row: "new" is stale
        rescoring._write(cursor, QlqC30Score, rescoring.SCORE_COLUMNS, [row], [], ["form_id"])
    assert QlqC30Score.objects.filter(form=forms[1]).count() == 1
    assert QlqC30Score.objects.get(form=forms[1]).SUM is None
    assert QlqC30Score.objects.count() == 4


def test_new_score_rows_hold_the_values_of_score_missing_scales_null(forms):
    """New score rows go by one binary COPY whose data numpy encodes for the whole batch:
    each stored row equals ``qlq_c30.score`` of its form, float for float, a missing scale
    (fewer than half of its items answered) NULL; stale new rows fall back to the upsert."""
    subject = forms[0].subject
    visit = Visit.objects.create(subject=subject, code="A4", kind="assessment",
                                 target_date=DAY0 + dt.timedelta(weeks=32), qlq_c30_due=True)
    answers = {key: 1 + i % 4 for i, key in enumerate(qlq_c30.ITEM_KEYS)}
    answers.update(q1=None, q2=None, q3=None, q8=None, q29=None, q30=7)  # PF2, DY, SUM missing
    partial = QlqC30Form.objects.create(subject=subject, visit=visit, mode="paper",
                                        completion_date=visit.target_date, **answers)
    expected = qlq_c30.score(partial.responses())
    assert expected["PF2"] is expected["DY"] is expected["SUM"] is None
    assert expected["QL2"] == 100.0 and expected["EF"] is not None

    rescoring.rescore_trial(subject.trial_id)
    for form in [*forms, partial]:
        score = QlqC30Score.objects.get(form=form)
        assert score.as_dict() == qlq_c30.score(form.responses()), form
        assert (score.state, score.error) == (ComputationState.DONE, "")

    scores = qlq_c30.score_array([[qlq_c30.UNANSWERED if v is None else v
                                   for v in partial.responses().values()]])
    scores[0, qlq_c30.SCALES.index("CF")] = 12.5  # differs from the stored row
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    stale = rescoring._NewScores(numpy.array([partial.pk]), scores,
                                 [tuple(None if v != v else v for v in scores[0].tolist())], at)
    with connection.cursor() as cursor:  # the row exists: the COPY fails, the upsert writes
        rescoring._write(cursor, QlqC30Score, rescoring.SCORE_COLUMNS, stale, [], ["form_id"])
    score = QlqC30Score.objects.get(form=partial)
    assert score.CF == 12.5 and score.PF2 is None and score.computed_at == at


def test_the_read_is_planned_for_every_row_and_the_setting_is_put_back(forms):
    """The trial's forms are all read: the cursor is declared with cursor_tuple_fraction 1;
    the caller's transaction keeps its own value afterwards."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL cursor_tuple_fraction = 0.25")
        statements = []

        def record(execute, sql, params, many, context):  # the value in force before each
            if "cursor_tuple_fraction" in sql:
                raw = connection.connection.execute("SHOW cursor_tuple_fraction")
                statements.append((sql, raw.fetchone()[0]))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(record):
            assert rescoring.rescore_trial(forms[0].subject.trial_id) == 4
        cursor.execute("SHOW cursor_tuple_fraction")
        assert cursor.fetchone()[0] == "0.25"
    # read, set to 1, then (the cursor declared in between) put back: 1 was in force
    assert [value for _, value in statements] == ["0.25", "0.25", "1"]


def test_batches_of_one_subject_give_the_results_of_one_batch(forms):
    """The trial's forms are read by one streamed query and cut into batches of subjects:
    a cut between every subject changes nothing (no subject split across two batches)."""
    trial = forms[0].subject.trial
    other = make_subject(trial, trial.sites.first(), day0=DAY0, enrolled_on=DAY0)
    for i in range(3):
        visit = Visit.objects.create(subject=other, code=f"A{i}", kind="assessment",
                                     target_date=DAY0 + dt.timedelta(weeks=8 * i),
                                     qlq_c30_due=True)
        QlqC30Form.objects.create(subject=other, visit=visit, mode="paper",
                                  completion_date=visit.target_date,
                                  **dict.fromkeys(qlq_c30.ITEM_KEYS, 1 + i))

    def results() -> tuple[dict, dict]:
        return ({s.form_id: s.as_dict() for s in QlqC30Score.objects.all()},
                {(t.subject_id, t.scale): (t.event, t.event_date, t.censor_date, t.days)
                 for t in QlqC30Deterioration.objects.all()})

    assert rescoring.rescore_trial(trial.pk, subjects_per_batch=1) == 7
    one_by_one = results()
    assert len(one_by_one[0]) == 7 and len(one_by_one[1]) == 2 * len(qlq_c30.SCALES)
    assert one_by_one[1][(other.pk, "PF2")][0] is True  # 100, 66.7, 33.3: confirmed
    QlqC30Score.objects.all().delete()
    QlqC30SubjectDeterioration.objects.all().delete()
    assert rescoring.rescore_trial(trial.pk) == 7
    assert results() == one_by_one


def test_the_api_shows_one_row_per_scale_of_the_subjects_stored_results(forms, api):
    """One stored row per subject, read through the view: the API's rows, fields and filters
    are those of one row per scale (``QlqC30Deterioration``)."""
    subject = forms[0].subject
    call_command("rescore_qlq_c30", subject.trial.registry_id)
    api.force_authenticate(make_user("qol_reader", "site_staff", (subject.trial, subject.site)))
    url = "/api/v1/qlq-c30-deterioration/"
    rows = api.get(url, {"subject": subject.pk, "ordering": "id"}).json()["results"]
    scores = [(f.completion_date, f.score.as_dict()) for f in sorted(
        QlqC30Form.objects.select_related("score"), key=lambda f: f.completion_date)]
    expected = [qlq_c30.time_to_deterioration(scale, DAY0, [(d, s[scale]) for d, s in scores])
                for scale in qlq_c30.SCALES]
    assert [list(row) for row in rows] == [["id", "subject", "scale", "event", "event_date",
                                            "confirm_date", "censor_date", "days",
                                            "computed_at"]] * len(qlq_c30.SCALES)
    assert [(r["subject"], r["scale"], r["event"], r["event_date"], r["confirm_date"],
             r["censor_date"], r["days"]) for r in rows] == [
        (subject.pk, scale, e.event, *(d and d.isoformat() for d in
                                      (e.event_date, e.confirm_date, e.censor_date)), e.days)
        for scale, e in zip(qlq_c30.SCALES, expected, strict=True)]
    assert api.get(f"{url}{rows[1]['id']}/").json() == rows[1]
    assert [r["scale"] for r in api.get(url, {"scale": "PF2"}).json()["results"]] == ["PF2"]
    assert {r["id"] for r in api.get(url, {"event": "false"}).json()["results"]} == {
        r["id"] for r in rows if not r["event"]}
