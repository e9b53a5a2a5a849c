"""``CreateModels``, ``TriggerChanges`` and ``AlterFields``: the same migration state as their
operations one by one, rendered once instead of once per operation (issue #19). The schema they
make is checked by every test run (the test database is migrated with them) and was compared
with ``pg_dump -s``."""

from __future__ import annotations

import pytest
from django.db import models
from django.db.migrations.operations import AlterField, CreateModel
from django.db.migrations.state import ProjectState

from edc.core.migration_operations import AlterFields, CreateModels, TriggerChanges


def _operations() -> list[CreateModel]:
    return [
        CreateModel("Parent", [("id", models.BigAutoField(primary_key=True)),
                               ("user", models.ForeignKey("auth.User", models.PROTECT))]),
        CreateModel("Child", [("id", models.BigAutoField(primary_key=True)),
                              ("parent", models.ForeignKey("probe.Parent", models.PROTECT,
                                                           related_name="children"))],
                    options={"ordering": ["parent"]}),
    ]


@pytest.fixture
def renders(monkeypatch) -> dict:
    """``{"count": n}``: how many times the migration state was re-rendered (``_reload``)."""
    calls = {"count": 0}
    original = ProjectState._reload

    def counting(self, related_models):
        calls["count"] += 1
        return original(self, related_models)

    monkeypatch.setattr(ProjectState, "_reload", counting)
    return calls


def _rendered_state() -> ProjectState:
    from django.apps import apps

    state = ProjectState.from_apps(apps)
    state.apps  # noqa: B018 - rendered, as migrate renders it before the first operation
    return state


def test_the_state_equals_the_operations_one_by_one():
    one_by_one, grouped = _rendered_state(), _rendered_state()
    for operation in _operations():
        operation.state_forwards("probe", one_by_one)
    CreateModels(_operations()).state_forwards("probe", grouped)

    assert grouped.models[("probe", "child")] == one_by_one.models[("probe", "child")]
    assert grouped.models[("probe", "parent")] == one_by_one.models[("probe", "parent")]
    child = grouped.apps.get_model("probe", "Child")
    parent = grouped.apps.get_model("probe", "Parent")
    assert child._meta.get_field("parent").related_model is parent
    assert parent._meta.get_field("children").related_model is child
    user = grouped.apps.get_model("auth", "User")
    assert any(rel.related_model is parent for rel in user._meta.related_objects)


def test_the_models_are_rendered_once(renders):
    one_by_one, grouped = _rendered_state(), _rendered_state()
    calls = renders
    for operation in _operations():
        operation.state_forwards("probe", one_by_one)
    assert calls["count"] == 2
    calls["count"] = 0
    CreateModels(_operations()).state_forwards("probe", grouped)
    assert calls["count"] == 1


def test_only_create_model_operations_are_grouped():
    with pytest.raises(TypeError):
        CreateModels([CreateModel("A", []), "not an operation"])
    assert CreateModels(_operations()).describe() == "Create models Parent, Child"


def _trigger_operations():
    """What the audit chain migrations do to an audit model (whose state here already has the
    three triggers): remove the triggers, add them."""
    from pgtrigger.migrations import AddTrigger, RemoveTrigger

    from edc.core.triggers import AppendOnly, ChainAtCommit, HashChain
    from subjects.models import Subject

    event = Subject.pgh_event_model
    return [RemoveTrigger("subjectevent", "append_only"),
            RemoveTrigger("subjectevent", "hash_chain"),
            RemoveTrigger("subjectevent", "chain_at_commit"),
            *(AddTrigger("subjectevent", trigger.compile(event))
              for trigger in (AppendOnly(), HashChain(), ChainAtCommit()))]


def test_trigger_changes_give_the_state_of_the_operations_one_by_one_rendered_once(renders):
    one_by_one, grouped = _rendered_state(), _rendered_state()
    calls = renders
    for operation in _trigger_operations():
        operation.state_forwards("subjects", one_by_one)
    assert calls["count"] == 6
    calls["count"] = 0
    TriggerChanges(_trigger_operations()).state_forwards("subjects", grouped)
    assert calls["count"] == 1
    key = ("subjects", "subjectevent")
    assert grouped.models[key].options["triggers"] == one_by_one.models[key].options["triggers"]
    assert [t.name for t in grouped.apps.get_model(*key)._meta.triggers] == [
        "append_only", "hash_chain", "chain_at_commit"]
    with pytest.raises(TypeError):
        TriggerChanges([CreateModel("A", [])])


def _alter_operations() -> list[AlterField]:
    return [
        AlterField("Parent", "user", models.ForeignKey("auth.User", models.PROTECT,
                                                       db_index=False)),
        AlterField("Child", "parent", models.ForeignKey("probe.Parent", models.PROTECT,
                                                        related_name="children",
                                                        db_index=False)),
    ]


def _created_state() -> ProjectState:
    state = _rendered_state()
    CreateModels(_operations()).state_forwards("probe", state)
    return state


def test_altered_fields_give_the_state_of_the_operations_one_by_one(renders):
    one_by_one, grouped = _created_state(), _created_state()
    calls = renders
    calls["count"] = 0  # counted from the created models on
    for operation in _alter_operations():
        operation.state_forwards("probe", one_by_one)
    assert calls["count"] == 2
    calls["count"] = 0
    AlterFields(_alter_operations()).state_forwards("probe", grouped)
    assert calls["count"] == 1

    for model in ("parent", "child"):
        assert grouped.models[("probe", model)] == one_by_one.models[("probe", model)]
    child = grouped.apps.get_model("probe", "Child")
    parent = grouped.apps.get_model("probe", "Parent")
    assert not child._meta.get_field("parent").db_index
    assert child._meta.get_field("parent").related_model is parent
    assert parent._meta.get_field("children").related_model is child


def test_alter_fields_alters_each_field_once():
    operation = _alter_operations()[0]
    with pytest.raises(ValueError):
        AlterFields([operation, operation])
    with pytest.raises(TypeError):
        AlterFields([*_alter_operations(), *_operations()])
    assert AlterFields(_alter_operations()).describe() == "Alter fields Parent.user, Child.parent"
