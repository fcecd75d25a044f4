from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from estimations.services import estimation_store
from estimator_project import mongo


class Command(BaseCommand):
    help = "Create the MongoDB indexes the service needs (idempotent: safe to run on every deploy)."

    def handle(self, *args, **options):
        if mongo.is_embedded():
            self.stdout.write(
                "MONGO_URI is not set: the embedded in-memory store is indexed by the server process "
                "itself when it starts. Nothing to do here."
            )
            return
        try:
            names = estimation_store().ensure_indexes()
        except PyMongoError as exc:
            raise CommandError(f"Could not create indexes: {type(exc).__name__}. Is MongoDB reachable?") from exc
        self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}': {', '.join(names)}"))
