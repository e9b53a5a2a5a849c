from django.apps import AppConfig


class AdverseEventsConfig(AppConfig):
    name = "adverse_events"
    verbose_name = "Adverse events"

    def ready(self) -> None:
        from visits.signals import exposure_changed

        from .receivers import exposure_reevaluates_toxicity

        exposure_changed.connect(exposure_reevaluates_toxicity,
                                 dispatch_uid="adverse_events.exposure_toxicity")
