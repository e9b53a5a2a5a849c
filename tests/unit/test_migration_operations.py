"""``CreateModels``: the same migration state as its ``CreateModel`` operations one by one,
rendered once instead of once per model (issue #19). The schema it creates is checked by every
test run (the test database is migrated with it) and was compared with ``pg_dump -s``."""

from __future__ import annotations

import pytest
from django.db import models
from django.db.migrations.operations import CreateModel
from django.db.migrations.state import ProjectState

from edc.core.migration_operations import CreateModels


def _operations() -> list[CreateModel]:
    return [
        CreateModel("Parent", [("id", models.BigAutoField(primary_key=True)),
                               ("user", models.ForeignKey("auth.User", models.PROTECT))]),
        CreateModel("Child", [("id", models.BigAutoField(primary_key=True)),
                              ("parent", models.ForeignKey("probe.Parent", models.PROTECT,
                                                           related_name="children"))],
                    options={"ordering": ["parent"]}),
    ]


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


def test_the_models_are_rendered_once(monkeypatch):
    one_by_one, grouped = _rendered_state(), _rendered_state()
    calls = {"count": 0}
    original = ProjectState._reload

    def counting(self, related_models):
        calls["count"] += 1
        return original(self, related_models)

    monkeypatch.setattr(ProjectState, "_reload", counting)
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
