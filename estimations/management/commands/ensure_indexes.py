from django.core.management.base import BaseCommand

from estimator_project import mongo
from estimator_project.commands import database_errors_as_command_errors
from estimator_project.indexes import ensure_all_indexes


class Command(BaseCommand):
    help = (
        "Create the MongoDB indexes the service needs, and make the retention (TTL) index follow "
        "ESTIMATION_TTL_DAYS (idempotent: safe to run on every deploy)."
    )

    def handle(self, *args, **options):
        if mongo.is_embedded() and not mongo.serves_embedded_store():
            # Not a failure: what this command ensures, the server ensures for its embedded store at start.
            self.stdout.write(
                "Nothing to do here: MONGO_URI is not set, and the server indexes its embedded in-memory "
                "store itself when it starts."
            )
            return
        with database_errors_as_command_errors("Creating indexes"):
            created = ensure_all_indexes()
        self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}':"))
        for collection, names in created.items():
            self.stdout.write(f"  {collection}: {', '.join(names)}")
