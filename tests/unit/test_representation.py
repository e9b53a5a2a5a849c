"""``edc.core.api.representation.PlainFieldsMixin`` shows records exactly as DRF does."""

import datetime as dt

from rest_framework import serializers

from edc.core.api.representation import PlainFieldsMixin
from subjects.models import Subject
from visits.models import QlqC30Score


class DrfSubject(serializers.ModelSerializer):
    label = serializers.SerializerMethodField()

    class Meta:
        model = Subject
        fields = ["id", "trial", "site", "screening_number", "sex", "birth_date", "status",
                  "age_at_consent", "cohort", "created_at", "retired_at", "day0", "label"]

    def get_label(self, obj) -> str:
        return f"#{obj.pk}"


class PlainSubject(PlainFieldsMixin, DrfSubject):
    pass


class DrfScore(serializers.ModelSerializer):
    class Meta:
        model = QlqC30Score
        fields = "__all__"


class PlainScore(PlainFieldsMixin, DrfScore):
    pass


def test_plain_fields_show_what_drf_shows():
    subject = Subject(
        id=7, trial_id=1, site_id=2, screening_number="S-01", sex=Subject.Sex.FEMALE,
        birth_date=dt.date(1960, 5, 1), status="on_treatment", age_at_consent=64, cohort=None,
        created_at=dt.datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC), retired_at=None,
        day0=dt.date(2025, 2, 3))
    assert PlainSubject(subject).data == DrfSubject(subject).data
    assert PlainSubject(subject).data["created_at"] == "2025-01-02T03:04:05.000678Z"
    assert PlainSubject(subject).data["label"] == "#7"
    score = QlqC30Score(form_id=9, state="done", error="", QL2=83.33333333333333,
                        PF2=None, computed_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    assert PlainScore(score).data == DrfScore(score).data


def test_only_stock_fields_with_one_attribute_are_plain():
    plan = {name: field for name, _, _, field in PlainSubject(Subject())._plain_plan()}
    assert plan["label"] is not None  # a method field goes through DRF
    assert all(plan[name] is None for name in ("id", "trial", "sex", "birth_date",
                                               "created_at", "cohort"))


def test_each_serializer_has_its_own_copy_of_a_derived_field():
    PlainSubject(Subject()).fields  # the first one makes the class's prototypes  # noqa: B018
    one, two = PlainSubject(Subject()).fields, PlainSubject(Subject()).fields
    assert type(one["sex"]) is type(two["sex"]) and one["sex"] is not two["sex"]
    assert one["sex"].parent is not two["sex"].parent
    one["sex"].error_messages["invalid_choice"] = "changed for one request"
    one["screening_number"].validators.append(lambda value: None)
    assert two["sex"].error_messages["invalid_choice"] != "changed for one request"
    assert len(two["screening_number"].validators) == len(
        DrfSubject(Subject()).fields["screening_number"].validators)
    assert PlainSubject(Subject(id=1, sex="F")).data == DrfSubject(Subject(id=1, sex="F")).data
