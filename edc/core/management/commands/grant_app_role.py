"""Create and grant the application's least-privilege role (also done by every migrate)."""

from django.core.management.base import BaseCommand

from edc.core.dbroles import grant_app_role


class Command(BaseCommand):
    help = "Create (if missing) and grant DATABASE_APP_ROLE; run as the owner role."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, **options):
        role = grant_app_role(options["database"])
        self.stdout.write(f"granted {role}")
