from django.apps import AppConfig


class VisitsConfig(AppConfig):
    name = "visits"
    verbose_name = "Visits and forms"

    def ready(self) -> None:
        from subjects.signals import schedule_changed

        from .receivers import rebuild_schedule

        schedule_changed.connect(rebuild_schedule, dispatch_uid="visits.rebuild_schedule")
