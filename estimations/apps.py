from django.apps import AppConfig


class EstimationsConfig(AppConfig):
    name = "estimations"
    verbose_name = "Estimations resource"

    def ready(self) -> None:
        drop_sql_bookkeeping()


DUMMY = "django.db.backends.dummy"


def drop_sql_bookkeeping() -> None:
    """With no SQL database (DATABASES is empty, which Django fills in with its dummy backend: the data is
    in MongoDB), Django's per-request database bookkeeping has nothing to do, yet it ran on every
    request: resetting the query log and closing old connections walk the connection handler twice a
    request. Under the POST load that was 3.5% of a worker's CPU (py-spy). A project that configures a
    database keeps them."""
    from django.conf import settings
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, reset_queries

    if any(database.get("ENGINE") != DUMMY for database in settings.DATABASES.values()):
        return
    request_started.disconnect(reset_queries)
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
