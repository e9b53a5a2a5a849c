from django.apps import AppConfig


class DataManagementConfig(AppConfig):
    name = "data_management"
    verbose_name = "Data management (queries, verification, signatures, locks)"
