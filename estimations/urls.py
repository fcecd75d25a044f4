from rest_framework.routers import SimpleRouter

from estimations.views import EstimationViewSet


class OptionalSlashRouter(SimpleRouter):
    """Eve's URLs have no trailing slash (/estimations/ID); a trailing slash is accepted too."""

    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("estimations", EstimationViewSet, basename="estimations")

urlpatterns = router.urls
