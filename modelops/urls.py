from core.url_slash import either_slash
from modelops import inspection
from modelops.api import ModelAccuracyView, ModelReplaysView, ModelReplayView

# ml.urls registers the "version" path converter; the project includes ml.urls first.
urlpatterns = [
    *either_slash("models/<version:version>/accuracy", ModelAccuracyView.as_view(), name="model-accuracy"),
    *either_slash("models/<version:version>/replay", ModelReplayView.as_view(), name="model-replay"),
    *either_slash("models/<version:version>/replays", ModelReplaysView.as_view(), name="model-replays"),
    *either_slash("inspect/", inspection.page, name="inspect"),
    *either_slash("inspect/curves.svg", inspection.curves, name="inspect-curves"),
    *either_slash("inspect/login", inspection.login, name="inspect-login"),
    *either_slash("inspect/logout", inspection.logout, name="inspect-logout"),
]
