from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate, post_save


class CoreConfig(AppConfig):
    """The core every domain app builds on: audit, outbox, roles and API plumbing.

    It imports no domain app; it reaches domain behaviour only through the hooks named in
    settings (``EDC_*``, checked at start-up by :mod:`edc.core.checks`). The label stays
    ``edc`` so that its tables and migration history are those it always had.
    """

    name = "edc.core"
    label = "edc"
    verbose_name = "trialdesk core"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
        from .dbroles import grant_after_migrate
        from .roles import membership_saved

        # post_migrate is sent per app once every migration has run: edc's signal sees every
        # table of the project.
        post_migrate.connect(grant_after_migrate, sender=self, dispatch_uid="edc.grant_app_role")
        post_save.connect(membership_saved, sender=settings.EDC_MEMBERSHIP_MODEL,
                          dispatch_uid="edc.membership_saved")
