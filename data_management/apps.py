from django.apps import AppConfig


class DataManagementConfig(AppConfig):
    name = "data_management"
    verbose_name = "Data management (queries, verification, signatures, locks)"

    def ready(self) -> None:
        from .lock_trigger import register_lock_triggers

        register_lock_triggers()

        from visits.signals import exposure_changed

        from .receivers import exposure_deviations

        exposure_changed.connect(exposure_deviations,
                                 dispatch_uid="data_management.exposure_deviations")
