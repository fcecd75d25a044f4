from django.urls import path, re_path

from .api import ModelActivateView, ModelDetailView, ModelListView

urlpatterns = [
    re_path(r"^models/?$", ModelListView.as_view(), name="models"),
    path("models/<int:version>", ModelDetailView.as_view(), name="model"),
    path("models/<int:version>/activate", ModelActivateView.as_view(), name="model-activate"),
]
