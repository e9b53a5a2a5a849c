from django.apps import AppConfig


class DataManagementConfig(AppConfig):
    name = "data_management"
    verbose_name = "Data management (queries, verification, signatures, locks)"

    def ready(self) -> None:
        from .lock_trigger import register_lock_triggers

        register_lock_triggers()
