from django.apps import AppConfig


class SubjectsConfig(AppConfig):
    name = "subjects"
    verbose_name = "Sites and subjects"

    def ready(self) -> None:
        from trials.signals import protocol_loaded

        from . import checks  # noqa: F401  (registers the system checks)
        from .receivers import sites_and_allocation_lists

        protocol_loaded.connect(sites_and_allocation_lists,
                                dispatch_uid="subjects.sites_and_allocation_lists")
