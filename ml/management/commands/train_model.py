import argparse
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core import mongo
from core.audit import command_actor
from core.commands import WITH_THE_KEY, database_errors_as_command_errors, require_the_servers_store
from ml.data import DataError
from ml.plot import curves_svg
from ml.registry import ArtifactRefused, RegistryError, UnknownVersion
from ml.report import metrics_table
from ml.services import model_train
from ml.serving import model_registry
from ml.train import ISSUE_SEED, MAX_SEED


def seed(text: str) -> int:
    """--seed: the bound POST /models?seed= has, refused as an argument error (not numpy's traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{ISSUE_SEED}, not {text!r}")
    return value


class Command(BaseCommand):
    help = (
        "Train a new model version from a CSV (header: category,bestseller_rank,monthly_sales), store it "
        "in the registry and activate it (unless it lacks DEFAULT_CATEGORY or a category the active version serves: "
        "it is then stored, and activate_model activates it). Running API processes pick it up within seconds."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--csv", type=Path, default=None, help="the training data (default: DEFAULT_TRAINING_CSV, the sample data)"
        )
        parser.add_argument("--activate", action="store_true", default=True, help="activate the new version (default)")
        parser.add_argument("--no-activate", dest="activate", action="store_false", help="store it, do not activate")
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="skip and count rows that fail validation (default: any bad row fails the run)",
        )
        parser.add_argument(
            "--seed", type=seed, default=0, help=f"seed of the holdout split, 0 to {MAX_SEED:,} (default 0)"
        )
        parser.add_argument("--plot", type=Path, help="also draw the model's curves into this SVG file")
        parser.add_argument(
            "--if-no-active",
            action="store_true",
            help="do nothing when a version is active and loads (for start-up); one this key refuses is replaced",
        )

    def handle(self, *args, **options):
        csv = options["csv"] or Path(settings.DEFAULT_TRAINING_CSV)
        if options["plot"]:
            self._check_writable(options["plot"])
        if options["if_no_active"] and self._the_server_trains_it(options):
            return
        require_the_servers_store(
            "trained",
            f"Train through the server: POST /models with the CSV as the body (Content-Type: text/csv) {WITH_THE_KEY}.",
        )
        try:
            with database_errors_as_command_errors("Training"):
                if options["if_no_active"] and self._nothing_to_do():
                    return
                metadata = model_train(
                    csv_path=csv,
                    actor=command_actor(),
                    activate=options["activate"],
                    skip_bad_rows=options["skip_bad_rows"],
                    seed=options["seed"],
                    warn=self._warn,
                )
                if options["plot"]:
                    self._draw(options["plot"], metadata)
        except DataError as exc:
            raise CommandError(str(exc)) from exc
        except RegistryError as exc:
            raise CommandError(f"The model was trained but not stored: {exc}") from exc
        self._report(metadata)

    def _the_server_trains_it(self, options: dict[str, Any]) -> bool:
        """--if-no-active with the default training, beside a server on the embedded store: not a failure,
        since that server trains exactly this into its store at start (modelops/startup.py)."""
        if not mongo.is_embedded() or mongo.serves_embedded_store():
            return False
        own_choices = (
            options["csv"],
            options["plot"],
            not options["activate"],
            options["skip_bad_rows"],
            options["seed"],
        )
        if any(own_choices):
            return False  # more than the server's own default training: the store guard stops it
        self.stdout.write(
            "Nothing to do here: MONGO_URI is not set, and the server trains the default model into its "
            "embedded in-memory store when it starts."
        )
        return True

    def _nothing_to_do(self) -> bool:
        registry = model_registry()
        active = registry.active_version()
        if active is None:
            return False
        try:
            registry.load_predictor(active)  # as serving loads it: a version it refuses is no model at all
        except (ArtifactRefused, UnknownVersion) as exc:
            self.stderr.write(f"Model version {active} is active but cannot be served: {exc}. Training a new version.")
            return False
        self.stdout.write(f"Model version {active} is active; nothing to train.")
        return True

    def _warn(self, changes: list[str]) -> None:
        for change in changes:
            self.stderr.write(self.style.WARNING(f"Warning: activating it narrows what is accepted: {change}."))

    def _report(self, metadata: dict[str, Any]) -> None:
        data = metadata["training_data"]
        self.stdout.write(
            f"Trained on {data['rows']:,} rows of {data['source']} (sha256 {data['sha256'][:12]}…), "
            f"{data['bad_rows_skipped']:,} bad rows skipped; holdout: {data['holdout_rows']:,} rows."
        )
        self.stdout.write(metrics_table(metadata))
        badges = (metadata.get("model_card") or {}).get("badges")
        if badges:  # range rows (badges) have no exact units to score; the table above is of the exact ones
            self.stdout.write(
                f"Held-out range rows (badges): {badges['holdout_rows']:,}, of which "
                f"{badges['median_in_range']:.0%} have their median estimate inside their range; the table "
                "above scores the exact rows only."
            )
        if not metadata["active"]:
            for change in metadata["warnings"]:
                self.stdout.write(f"Activating it would narrow what is accepted: {change}.")
        if metadata.get("held_back"):
            self.stdout.write(self.style.WARNING(f"Not activated: {metadata['held_back']}."))
        state = "active" if metadata["active"] else "stored, not active"
        self.stdout.write(self.style.SUCCESS(f"Model version {metadata['version']} {state}."))

    @staticmethod
    def _check_writable(path: Path) -> None:
        """--plot is refused before anything is read, trained or stored: a chart that cannot be written would
        otherwise fail the run after its version was stored and activated."""
        folder = path.parent
        if path.is_dir():
            problem = "it is a directory"
        elif not folder.is_dir():
            problem = f"there is no directory {folder}"
        elif not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            problem = "it is not writable"
        else:
            return
        raise CommandError(f"--plot {path}: the chart cannot be written there ({problem}); nothing was trained.")

    def _draw(self, path: Path, metadata: dict[str, Any]) -> None:
        model = model_registry().load_predictor(metadata["version"])
        try:
            path.write_text(curves_svg(model))
        except OSError as exc:
            raise CommandError(f"The model was stored, but the chart could not be written to {path}: {exc}") from exc
        self.stdout.write(f"Drew the curves to {path}.")
