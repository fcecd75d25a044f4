from django.core.management.base import BaseCommand, CommandError

from core.audit import command_actor
from core.commands import WITH_THE_KEY, database_errors_as_command_errors, require_the_servers_store
from ml.registry import RegistryError
from ml.services import model_activate


class Command(BaseCommand):
    help = "Make a stored model version the active one (promote, or roll back). It is verified first."

    def add_arguments(self, parser):
        parser.add_argument("version", type=int, help="the version number (see list_models)")

    def handle(self, *args, version: int, **options):
        require_the_servers_store(
            "activated", f"Activate through the server: POST /models/{version}/activate {WITH_THE_KEY}."
        )
        try:
            with database_errors_as_command_errors("Activating"):
                model_activate(version=version, actor=command_actor(), warn=self._warn)
        except RegistryError as exc:
            raise CommandError(f"Version {version} was not activated: {exc}.") from exc
        self.stdout.write(
            self.style.SUCCESS(f"Model version {version} is active; API processes switch within seconds.")
        )

    def _warn(self, changes: list[str]) -> None:
        for change in changes:
            self.stderr.write(self.style.WARNING(f"Warning: this narrows what is accepted: {change}."))
