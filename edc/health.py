"""``/health/``: 200 when PostgreSQL and the Celery broker answer, 503 otherwise."""

from django.db import connection
from django.http import JsonResponse


def _database_state() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}"


def _broker_state() -> str:
    from .celery import app

    if app.conf.task_always_eager:
        return "eager (no broker: tasks run in-process)"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=2)
        return "ok"
    except Exception as exc:
        return f"down: {type(exc).__name__}"


def health(request):
    state = {"database": _database_state(), "broker": _broker_state()}
    healthy = state["database"] == "ok" and not state["broker"].startswith("down")
    return JsonResponse({"status": "ok" if healthy else "unavailable", **state},
                        status=200 if healthy else 503)
