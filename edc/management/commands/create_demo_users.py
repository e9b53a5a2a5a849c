"""Create one demo user per role, with memberships in every loaded trial, and print them."""

import os

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand
from django.db import transaction

from edc.core import roles
from edc.core.audit import change_reason
from subjects.models import Membership
from trials.models import Trial

#: role -> (whole trial or first site only, unblinded)
DEMO_ACCESS = {
    roles.SITE_STAFF: ("first_site", False),
    roles.INVESTIGATOR: ("first_site", False),
    roles.MONITOR: ("all_sites", False),
    roles.DATA_MANAGER: ("all_sites", False),
    roles.SPONSOR: ("all_sites", False),
    roles.STATISTICIAN: ("all_sites", True),
    roles.ADMIN: ("all_sites", True),
}


class Command(BaseCommand):
    help = "Create (or reset) the demo users, one per role; password from DEMO_PASSWORD."

    @transaction.atomic
    def handle(self, *args, **options):
        password = os.environ.get("DEMO_PASSWORD", "trialdesk-demo")
        trials = list(Trial.objects.prefetch_related("sites"))
        self.stdout.write("Demo users (username / password):")
        with change_reason("demo set-up"):
            for role, (reach, unblinded) in DEMO_ACCESS.items():
                user, _ = User.objects.get_or_create(username=f"demo_{role}")
                user.is_staff = True
                user.is_superuser = role == roles.ADMIN
                user.set_password(password)
                user.save()
                user.groups.add(Group.objects.get(name=role))
                for trial in trials:
                    sites = list(trial.sites.all())
                    site = sites[0] if reach == "first_site" and sites else None
                    Membership.objects.get_or_create(
                        user=user, trial=trial, site=site, defaults={"unblinded": unblinded}
                    )
                self.stdout.write(f"  {user.username:<22} {password}   ({role})")
