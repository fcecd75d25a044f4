from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import mongo
from core.commands import database_errors_as_command_errors
from modelops.indexes import (
    RUN,
    IndexesNotEnsured,
    describe_failure,
    differences,
    ensure_all_indexes,
    ensure_at_start,
)


class Command(BaseCommand):
    help = (
        "Create the MongoDB indexes the service needs, and make the retention (TTL) index follow "
        "ESTIMATION_TTL_DAYS (idempotent: safe to run on every deploy). A changed index is rebuilt, an "
        "equivalent one under another name adopted; each collection's work waits at most "
        "INDEX_BUILD_TIMEOUT_MS."
    )

    def add_arguments(self, parser):
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--check",
            action="store_true",
            help="Build nothing: list what is missing or differs, and exit 1 when anything does.",
        )
        mode.add_argument(
            "--at-start",
            action="store_true",
            help=(
                "What a start chain runs: ENSURE_INDEXES=on builds, defer only reports; a failure is logged in "
                "one line and the command exits 0, so the API starts on the indexes in place."
            ),
        )
        parser.add_argument(
            "--timeout-ms",
            type=int,
            help="This run's INDEX_BUILD_TIMEOUT_MS (a long build on a large collection, run by an operator).",
        )

    def handle(self, *args, **options):
        if mongo.is_embedded() and not mongo.serves_embedded_store():
            # Not a failure: what this command ensures, the server ensures for its embedded store at start.
            self.stdout.write(
                "Nothing to do here: MONGO_URI is not set, and the server indexes its embedded in-memory "
                "store itself when it starts."
            )
            return
        timeout_ms = options["timeout_ms"]
        if timeout_ms is not None and timeout_ms <= 0:
            raise CommandError("--timeout-ms: give the milliseconds a build may take, more than 0.")
        configured = settings.INDEX_BUILD_TIMEOUT_MS
        settings.INDEX_BUILD_TIMEOUT_MS = timeout_ms or configured
        try:
            self._run(options)
        finally:
            settings.INDEX_BUILD_TIMEOUT_MS = configured

    def _run(self, options) -> None:
        if options["check"]:
            self._check()
            return
        if options["at_start"]:
            if ensure_at_start(defer=settings.ENSURE_INDEXES == "defer"):
                self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}'."))
            return
        try:
            with database_errors_as_command_errors("Creating indexes"):
                created = ensure_all_indexes()
        except IndexesNotEnsured as exc:
            self._write(exc.rollout.in_place)
            failures = "; ".join(f"{name}: {describe_failure(error)}" for name, error in exc.rollout.failed.items())
            raise CommandError(f"Creating indexes failed on {failures}") from exc
        self._write(created)

    def _write(self, created: dict[str, list[str]]) -> None:
        self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}':"))
        for collection, names in created.items():
            self.stdout.write(f"  {collection}: {', '.join(names)}")

    def _check(self) -> None:
        with database_errors_as_command_errors("Checking indexes"):
            found = differences()
        if not found:
            self.stdout.write(self.style.SUCCESS(f"Indexes in place on '{mongo.database_name()}'."))
            return
        for line in found:
            self.stdout.write(f"  {line}")
        raise CommandError(f"{len(found)} indexes missing or differing on '{mongo.database_name()}': run {RUN}")
