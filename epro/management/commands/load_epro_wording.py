"""Load a trial's licensed QLQ-C30 wording in one language (format: ``epro.wording``)."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from epro import services
from trials.models import Trial


class Command(BaseCommand):
    help = ("Load the licensed QLQ-C30 wording of a trial in one language from a TOML file "
            "(README 'ePRO'); --default makes it the trial's default ePRO language.")

    def add_arguments(self, parser):
        parser.add_argument("trial", help="registry id, e.g. NCT05962450")
        parser.add_argument("file", type=Path)
        parser.add_argument("--default", action="store_true")

    def handle(self, *args, trial, file, default, **options):
        found = Trial.objects.filter(registry_id=trial).first()
        if found is None:
            raise CommandError(f"no trial {trial}")
        try:
            row = services.load_wording(found, file.read_text(encoding="utf-8"), file.name,
                                        default=default)
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        except ValidationError as exc:
            raise CommandError(f"{file}: " + "; ".join(exc.messages)) from None
        self.stdout.write(f"{found}: {row.instrument} wording in {row.language} loaded"
                          f"{' (default)' if row.is_default else ''}")
