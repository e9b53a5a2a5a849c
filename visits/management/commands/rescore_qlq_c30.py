"""``manage.py rescore_qlq_c30 TRIAL``: rescore every QLQ-C30 form of a trial in bulk."""

import time

from django.core.management.base import BaseCommand, CommandError

from trials.models import Trial
from visits.rescoring import rescore_trial


class Command(BaseCommand):
    help = "Rescore all QLQ-C30 forms of a trial and recompute time to deterioration."

    def add_arguments(self, parser):
        parser.add_argument("trial", help="registry id (e.g. an NCT id)")
        parser.add_argument("--subjects-per-batch", type=int, default=2000)

    def handle(self, *args, **options):
        trial = Trial.objects.filter(registry_id=options["trial"]).first()
        if trial is None:
            raise CommandError(f"no trial {options['trial']!r}")
        started = time.perf_counter()
        count = rescore_trial(trial.pk, options["subjects_per_batch"])
        elapsed = time.perf_counter() - started
        rate = count / elapsed if elapsed else 0.0
        self.stdout.write(f"rescored {count} forms in {elapsed:.2f} s ({rate:,.0f} forms/s)")
