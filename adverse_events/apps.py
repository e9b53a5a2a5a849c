from django.apps import AppConfig


class AdverseEventsConfig(AppConfig):
    name = "adverse_events"
    verbose_name = "Adverse events"
