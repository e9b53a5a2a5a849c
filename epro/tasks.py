"""Celery tasks of ePRO.

* ``remind_due_forms`` (beat, hourly): sites are told of patients' ePRO questionnaires not
  completed by the middle of the visit's window (``services.remind_due_forms``).
"""

from celery import shared_task

from . import services


@shared_task(name="epro.tasks.remind_due_forms")
def remind_due_forms() -> int:
    return services.remind_due_forms()
