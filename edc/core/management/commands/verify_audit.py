"""Recompute the audit trail's hash chains and check its signed contexts
(``edc.core.audit_integrity``)."""

from django.core.management.base import BaseCommand, CommandError

from edc.core import audit_integrity


class Command(BaseCommand):
    help = ("Verify every audit table: report the first broken link of each hash chain and "
            "every row whose context the application did not sign; exit 1 if any.")

    def add_arguments(self, parser):
        parser.add_argument("tables", nargs="*", help="audit tables (default: all)")

    def handle(self, *args, **options):
        problems = audit_integrity.verify(*options["tables"])
        for problem in problems:
            self.stdout.write(str(problem))
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the audit trail")
        heads = audit_integrity.heads()
        for table, (count, head) in heads.items():
            if not options["tables"] or table in options["tables"]:
                self.stdout.write(f"{table}: {count} rows, head {head or '-'}")
        self.stdout.write(self.style.SUCCESS(f"OK: {len(heads)} audit tables verified"))
