from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Sponsor exports (SDTM, Dataset-JSON, XLSX)"
