from django.core.management.base import BaseCommand, CommandError

from core.audit import command_actor
from core.commands import WITH_THE_KEY, database_errors_as_command_errors, require_the_servers_store
from ml.registry import RegistryError
from ml.report import replay_table
from modelops.services import model_replay


def positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


class Command(BaseCommand):
    help = (
        "Shadow replay: re-estimate stored estimations with VERSION beside the active model and report the "
        "difference per marketplace and category (and, where actual sales were recorded, which is closer). "
        "Stored estimations are only read; the report is stored and shown on /inspect/."
    )

    def add_arguments(self, parser):
        parser.add_argument("version", type=int, help="the candidate version (see list_models)")
        parser.add_argument(
            "--sample", type=positive, default=None, help="re-estimate N estimations drawn at random (default: all)"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, version: int, sample: int | None, no_progress: bool, **options):
        require_the_servers_store(
            "replayed", f"Replay through the server: POST /models/{version}/replay {WITH_THE_KEY}."
        )
        try:
            with database_errors_as_command_errors("Replaying"):
                report = model_replay(version=version, sample=sample, actor=command_actor(), progress=not no_progress)
        except RegistryError as exc:
            raise CommandError(f"No replay of version {version}: {exc}.") from exc
        self.stdout.write(
            f"Replayed {report['rows']:,} stored estimations with version {version} beside active version "
            f"{report['against_version']} ({report['skipped_rows']:,} skipped: marketplace and category unknown to "
            "one of them, or an unreadable rank history). Nothing stored was changed."
        )
        for skipped in report["skipped"].values():
            self.stdout.write(f"Skipped: {skipped['message']}.")
        self.stdout.write(replay_table(report))
        self.stdout.write(self.style.SUCCESS(f"Report {report['_id']} stored."))
