"""``manage.py load_ctcae [CSV]``: load the CTCAE v5.0 dictionary (idempotent)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from adverse_events import ctcae


class Command(BaseCommand):
    help = "Load NCI CTCAE v5.0 terms (default seeds/ctcae_v5.csv); running it again is a no-op."

    def add_arguments(self, parser):
        parser.add_argument("csv", nargs="?", help="CSV file (default: seeds/ctcae_v5.csv)")

    def handle(self, *args, **options):
        path = Path(options["csv"]) if options["csv"] else ctcae.default_path()
        if not path.exists():
            raise CommandError(f"{path} not found")
        try:
            result = ctcae.load(path)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"CTCAE v5.0: {result.created} created, {result.updated} updated, "
                          f"{result.unchanged} unchanged")
