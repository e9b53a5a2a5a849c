from django.apps import AppConfig


class AccountsConfig(AppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts (21 CFR 11.300)"

    def ready(self) -> None:
        from . import schema  # noqa: F401  (registers the OpenAPI token scheme)
