"""Migration operations of the project's own (issue #19: schema creation time).

``migrate`` re-renders the migration state after every ``CreateModel`` (and every ``AlterField``
of a relation): Django rebuilds the new model and every model related to it
(``ProjectState.add_model`` -> ``reload_model``), and most
models relate to ``auth.User`` and the trial, so an app of 18 models rendered the same related
models 18 times (about half of ``migrate`` on an empty database, cProfile). :class:`CreateModels`
adds the model states of a group of ``CreateModel`` operations first and renders them once; the
tables, constraints, indexes and triggers are then created by each ``CreateModel`` as before,
so the schema and the migration state are the same as the operations one by one.
:class:`TriggerChanges` does the same for pgtrigger's ``AddTrigger``/``RemoveTrigger``, which
re-render their model (and the models related to it) once each, and :class:`AlterFields` for
``AlterField``.
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.fields import AlterField
from django.db.migrations.operations.models import CreateModel
from pgtrigger.migrations import AddTrigger, RemoveTrigger


class _RenderOnce(Operation):
    """Several operations of one kind, applied to the state with a single render of it; their
    database operations run one by one between the group's states."""

    reversible = True
    reduces_to_sql = True
    kinds: tuple[type[Operation], ...] = ()
    #: ``ProjectState.reload_models``' ``delay``, as the grouped operations pass it one by one
    delay = False
    #: The attribute of a grouped operation that names its model (lower case)
    model_attr = "model_name_lower"

    def __init__(self, operations: list[Operation]):
        if not all(isinstance(operation, self.kinds) for operation in operations):
            raise TypeError(f"{type(self).__name__} groups "
                            f"{', '.join(kind.__name__ for kind in self.kinds)} operations only")
        self.operations = list(operations)
        super().__init__()

    def deconstruct(self):
        return self.__class__.__qualname__, [self.operations], {}

    def state_forwards(self, app_label, state):
        rendered = state.__dict__.pop("apps", None)  # hide the rendered apps: no reload per model
        try:
            for operation in self.operations:
                operation.state_forwards(app_label, state)
        finally:
            if rendered is not None:
                state.__dict__["apps"] = rendered
        if rendered is not None:
            state.reload_models(list(dict.fromkeys(
                (app_label, getattr(operation, self.model_attr)) for operation in self.operations)),
                delay=self.delay)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        for operation in self.operations:
            operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        for operation in reversed(self.operations):
            operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def references_model(self, name, app_label):
        return any(operation.references_model(name, app_label) for operation in self.operations)

    @property
    def migration_name_fragment(self):
        return "_".join(operation.migration_name_fragment for operation in self.operations)


class CreateModels(_RenderOnce):
    """Several ``CreateModel`` operations with a single render of the migration state."""

    kinds = (CreateModel,)
    model_attr = "name_lower"

    def describe(self):
        return "Create models " + ", ".join(operation.name for operation in self.operations)


class TriggerChanges(_RenderOnce):
    """Several pgtrigger ``AddTrigger``/``RemoveTrigger`` operations with a single render of the
    migration state (a removal drops the trigger of the state before the group, an addition
    installs its own compiled trigger, as one by one)."""

    kinds = (AddTrigger, RemoveTrigger)
    delay = True  # a trigger changes no relation

    def describe(self):
        return f"Change {len(self.operations)} triggers"


class AlterFields(_RenderOnce):
    """Several ``AlterField`` operations with a single render of the migration state (each
    alters its own field: the states before and after the group differ in that field as they
    would for the operation alone)."""

    kinds = (AlterField,)

    def __init__(self, operations: list[AlterField]):
        super().__init__(operations)
        fields = [(operation.model_name_lower, operation.name_lower) for operation in operations]
        if len(set(fields)) != len(fields):
            raise ValueError("AlterFields alters each field once")

    def describe(self):
        return "Alter fields " + ", ".join(f"{operation.model_name}.{operation.name}"
                                           for operation in self.operations)
