from django.apps import AppConfig


class ModelopsConfig(AppConfig):
    name = "modelops"
    verbose_name = "The model beside the stored estimations: /models, accuracy, replay, inspection, start-up"

    def ready(self) -> None:
        from core.observability import collect_at_scrape
        from modelops.drift_metrics import COLLECTOR

        collect_at_scrape(COLLECTOR)  # the drift alarms, made when /metrics is scraped
