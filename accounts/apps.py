from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts (21 CFR 11.300)"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI token scheme)


class TrialdeskAdminConfig(admin_apps.AdminConfig):
    default = False
    """``django.contrib.admin`` with the trialdesk admin site (optional TOTP at login)."""

    default_site = "accounts.admin_site.TrialdeskAdminSite"
