from django.apps import AppConfig


class EproConfig(AppConfig):
    name = "epro"
    verbose_name = "ePRO (patient-completed questionnaires)"
