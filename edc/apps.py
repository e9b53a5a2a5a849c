"""The project wiring: settings, URLs, the admin site with the trial dashboards, demo users.

The only package allowed to import every app (import-linter contracts in ``.importlinter``).
"""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ProjectConfig(AppConfig):
    name = "edc"
    label = "project"
    verbose_name = "trialdesk"


class AdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the trialdesk admin site (:mod:`edc.dashboard.site`)."""

    default_site = "edc.dashboard.site.AdminSite"
