"""The Celery application: Redis broker, configuration from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")

app = Celery("edc")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _say_when_eager(sender, **kwargs):
    """The demo without a broker runs tasks in-process; say so once in the log."""
    if sender.conf.task_always_eager:
        import logging

        logging.getLogger("edc").warning(
            "No Celery broker reachable: background tasks run eagerly in the web process."
        )
