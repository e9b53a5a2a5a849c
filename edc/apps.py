from django.apps import AppConfig


class EdcConfig(AppConfig):
    name = "edc"
    verbose_name = "trialdesk core"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers system checks)
