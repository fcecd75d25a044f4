from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ml.sample_data import write_csv


class Command(BaseCommand):
    help = (
        "Write a synthetic CSV of marketplace,category,bestseller_rank,monthly_sales (us, uk, de) drawn from "
        "the published power law of Amazon sales in rank (see ml/sample_data.py for the parameters and sources)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=40_000, help="rows to write (default 40,000)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--out", type=Path, required=True, help="CSV file to write")

    def handle(self, *args, rows: int, seed: int, out: Path, **options):
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        try:
            written = write_csv(out, rows, seed)
        except OSError as exc:
            raise CommandError(f"Could not write {out}: {exc.strerror}") from exc
        self.stdout.write(self.style.SUCCESS(f"Wrote {written:,} rows to {out} (seed {seed})."))
