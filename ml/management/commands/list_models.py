from django.core.management.base import BaseCommand

from core.commands import database_errors_as_command_errors, require_the_servers_store
from ml.report import versions_table
from ml.serving import model_registry


class Command(BaseCommand):
    help = "List the stored model versions with their holdout metrics; * marks the active one."

    def handle(self, *args, **options):
        require_the_servers_store("listed", "The server lists its model versions at GET /models.")
        with database_errors_as_command_errors("Listing the models"):
            registry = model_registry()
            versions, active = registry.list(), registry.active_version()
        if not versions:
            self.stdout.write(
                "No model versions yet. Train one: python manage.py train_model --csv data/sample_sales.csv"
            )
            return
        self.stdout.write(versions_table(versions, active))
