from django.core.management.base import BaseCommand

from estimations.services import estimation_store
from estimator_project import mongo
from estimator_project.commands import database_errors_as_command_errors


class Command(BaseCommand):
    help = "Create the MongoDB indexes the service needs (idempotent: safe to run on every deploy)."

    def handle(self, *args, **options):
        if mongo.is_embedded():
            self.stdout.write(
                "MONGO_URI is not set: the embedded in-memory store is indexed by the server process "
                "itself when it starts. Nothing to do here."
            )
            return
        with database_errors_as_command_errors("Creating indexes"):
            names = estimation_store().ensure_indexes()
        self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}': {', '.join(names)}"))
