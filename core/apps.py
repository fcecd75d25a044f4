from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "What every app needs, with no domain: MongoDB, errors, HTTP, keys, audit, metrics"
