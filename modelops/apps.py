from django.apps import AppConfig


class ModelopsConfig(AppConfig):
    name = "modelops"
    verbose_name = "The model beside the stored estimations: /models, accuracy, replay, inspection, start-up"
