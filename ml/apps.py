from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Sales model: training, registry and serving"
