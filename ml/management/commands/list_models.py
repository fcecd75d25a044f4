from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from ml.report import versions_table
from ml.serving import model_registry


class Command(BaseCommand):
    help = "List the stored model versions with their holdout metrics; * marks the active one."

    def handle(self, *args, **options):
        try:
            registry = model_registry()
            versions, active = registry.list(), registry.active_version()
        except PyMongoError as exc:
            raise CommandError(
                f"Could not reach the model registry ({type(exc).__name__}). Is MongoDB running?"
            ) from exc
        if not versions:
            self.stdout.write(
                "No model versions yet. Train one: python manage.py train_model --csv data/sample_sales.csv"
            )
            return
        self.stdout.write(versions_table(versions, active))
