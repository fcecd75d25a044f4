from django.apps import AppConfig


class EstimationsConfig(AppConfig):
    name = "estimations"
    verbose_name = "Estimations resource"
