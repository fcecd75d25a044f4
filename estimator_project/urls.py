from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from core.audit_api import AuditListView
from core.errors import read_only
from core.observability import metrics_view
from core.url_slash import either_slash
from estimations.urls import urlpatterns as estimation_urls
from estimations.views import HomeView
from estimator_project import health

urlpatterns = [
    # The resource's own patterns first, at the top level: its requests are the most frequent.
    *estimation_urls,
    path("", HomeView.as_view(), name="home"),
    path("", include("ml.urls")),
    path("", include("modelops.urls")),
    *either_slash("audit", AuditListView.as_view(), name="audit"),
    # Read-only pages: any other method answers 405 in the envelope, with Allow.
    *either_slash("health/live", read_only(health.live), name="health-live"),
    *either_slash("health/ready", read_only(health.ready), name="health-ready"),
    *either_slash("metrics", read_only(metrics_view), name="metrics"),
    *either_slash("api/schema/", read_only(SpectacularAPIView.as_view()), name="schema"),
    *either_slash("api/docs/", read_only(SpectacularSwaggerView.as_view(url_name="schema")), name="swagger-ui"),
    *either_slash("api/redoc/", read_only(SpectacularRedocView.as_view(url_name="schema")), name="redoc"),
]

# Every error answers in the JSON error envelope, also outside the API's views.
handler400 = "core.errors.handler400"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
