from django.urls import re_path, register_converter

from core.url_slash import either_slash
from ml.api import ModelActivateView, ModelDetailView
from ml.training_api import ModelJobView, ModelsView


class VersionConverter:
    """A model version: at most 9 digits, so no URL can carry a number MongoDB cannot store (a 404)."""

    regex = "[0-9]{1,9}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(VersionConverter, "version")

urlpatterns = [
    re_path(r"^models/?$", ModelsView.as_view(), name="models"),
    re_path(r"^models/jobs/(?P<id>[^/]{1,64})/?$", ModelJobView.as_view(), name="model-job"),
    *either_slash("models/<version:version>", ModelDetailView.as_view(), name="model"),
    *either_slash("models/<version:version>/activate", ModelActivateView.as_view(), name="model-activate"),
]
