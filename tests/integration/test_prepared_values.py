"""``edc.core.prepared.PreparedValues``: a ``values()`` query compiled once per shape, and the
write guard's check of a saved record built on it (issue 19: recompiled on every update)."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db.models import Exists, OuterRef

from data_management import guards, locks
from data_management.exceptions import RecordLocked
from edc.core import roles
from edc.core.audit import change_reason
from edc.core.prepared import PreparedShapes, PreparedValues
from subjects.models import Subject
from tests.factories import make_dm_visit, make_site, make_subject, make_trial, make_user
from visits.models import Visit

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    trial = make_trial()
    site = make_site(trial, "A")
    subjects = [make_subject(trial, site, screening_number=f"A-{n}", age_at_consent=40 + n)
                for n in range(3)]
    return {"trial": trial, "site": site, "subjects": subjects,
            "dm": make_user("dm", "data_manager", (trial, None))}


def _query(shape, pk, other):
    """The subject ``pk`` with whether subject ``other`` has a visit: ``pk`` used twice."""
    (n_listed,) = shape
    return (Subject.objects.filter(pk=pk).order_by()
            .annotate(has_visit=Exists(Visit.objects.filter(subject_id=OuterRef("pk"))),
                      other_has_visit=Exists(Visit.objects.filter(subject_id=other)),
                      again=Exists(Subject.objects.filter(pk=pk)))
            .values("pk", "screening_number", "age_at_consent", "has_visit",
                    "other_has_visit", "again"))


def test_a_prepared_values_query_answers_as_the_queryset_and_compiles_once(world):
    first, second, third = world["subjects"]
    make_dm_visit(second, "C1", target_date=dt.date(2025, 3, 1))
    build = mock.Mock(side_effect=_query)
    prepared = PreparedValues(build)
    for pk, other in ((first.pk, second.pk), (second.pk, third.pk), (third.pk, first.pk)):
        assert prepared.run((0,), pk, other) == list(_query((0,), pk, other))
    assert prepared.run((0,), first.pk + 10_000, second.pk) == []
    assert build.call_count == 1
    assert prepared.run((0,), None, second.pk) == list(_query((0,), None, second.pk))
    assert build.call_count == 2  # a None value is another shape


def test_a_value_that_is_not_an_integer_parameter_is_refused(world):
    """A placeholder the SQL converts (to text here) would run with the placeholder's value:
    refused when the query is compiled."""
    prepared = PreparedValues(
        lambda shape, number: Subject.objects.filter(screening_number=number).values("pk"))
    with pytest.raises(ValueError, match="integer parameters"):
        prepared.run((), 1)


def test_a_query_prepared_per_scope_shape_finds_what_scope_finds_and_compiles_once(world):
    """``PreparedShapes`` with ``roles.scope_shape``: one compiled statement per shape of
    memberships, the trial and site ids its parameters; each user finds the records
    ``roles.scope`` finds for them, not those of another user of the same shape."""
    trial, site = world["trial"], world["site"]
    other_site = make_site(trial, "B")
    elsewhere = make_subject(trial, other_site, screening_number="B-1")
    at_a = make_user("at_a", "site_staff", (trial, site))
    at_b = make_user("at_b", "site_staff", (trial, other_site))
    build = mock.Mock(side_effect=lambda shape, pk, *ids: roles.scoped_as(
        Subject.objects.all(), shape, ids).filter(pk=pk).order_by())
    prepared = PreparedShapes(build)
    for user in (at_a, at_b, world["dm"]):
        shape, ids = roles.scope_shape(user)
        for subject in (*world["subjects"], elsewhere):
            found = [s.pk for s in prepared.run(shape, subject.pk, *ids)]
            assert found == list(roles.scope(Subject.objects.filter(pk=subject.pk), user)
                                 .values_list("pk", flat=True)), (user, subject)
    assert roles.scope_shape(at_a)[0] == roles.scope_shape(at_b)[0]
    assert build.call_count == 2  # one site of one trial; a whole trial


def test_the_guards_compiled_check_still_refuses_a_lock_set_after_it(world):
    """The check of a saved record runs from SQL compiled at the first update; a lock set
    later (subject, then trial) is found and named, and an update after the unlock passes."""
    subject, other = world["subjects"][:2]
    with change_reason("age corrected"):
        subject.age_at_consent = 50
        subject.save()
        other.age_at_consent = 51
        other.save()
    with mock.patch.object(guards._SAVED_ROW, "_build", side_effect=AssertionError("rebuilt")):
        locks.change_lock(world["dm"], "subject", subject, "lock", "clean")
        subject.age_at_consent = 52
        with pytest.raises(RecordLocked, match="its subject .* was locked"), \
                change_reason("age corrected"):
            subject.save()
        with change_reason("age corrected"):
            other.age_at_consent = 53
            other.save()
        locks.change_lock(world["dm"], "trial", world["trial"], "freeze", "interim")
        with pytest.raises(RecordLocked, match="its trial .* was frozen"), \
                change_reason("age corrected"):
            other.save()
    assert Subject.objects.get(pk=subject.pk).age_at_consent == 50
    assert Subject.objects.get(pk=other.pk).age_at_consent == 53
