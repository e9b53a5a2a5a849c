"""``manage.py seed_protocols [FILES...]``: load protocol files (default: all in seeds/)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from trials.loader import load_files
from trials.protocol_schema import ProtocolError


class Command(BaseCommand):
    help = "Validate and load protocol files; a changed file becomes a new protocol version."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", help="protocol files (default: seeds/*.toml)")

    def handle(self, *args, **options):
        files = options["files"] or sorted((Path(settings.BASE_DIR) / "seeds").glob("*.toml"))
        if not files:
            raise CommandError("no protocol files found")
        try:
            results = load_files(files)
        except ProtocolError as exc:
            raise CommandError(f"protocol files refused, nothing loaded:\n{exc}") from None
        for result in results:
            state = "loaded" if result.created else "unchanged"
            self.stdout.write(f"{result.registry_id}: version {result.version} {state} "
                              f"({Path(result.file).name})")
