"""Send again background work that the broker never accepted (same as the beat task)."""

from django.core.management.base import BaseCommand

from edc.core.outbox import requeue_pending


class Command(BaseCommand):
    help = "Re-queue pending Celery work recorded in the outbox."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=0, help="seconds (default 0)")

    def handle(self, *args, **options):
        sent = requeue_pending(options["older_than"])
        self.stdout.write(f"re-queued {sent} task(s)")
