import csv
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ml.badges import OPEN_FROM, BadgeError, convert


class Command(BaseCommand):
    help = (
        'Turn a spreadsheet export (CSV) with a "bought in past month" badge column into a training CSV: the '
        "badge becomes monthly_sales_min,monthly_sales_max (1K+ -> 1000,1999; no badge -> 0,49; from "
        f"{OPEN_FROM:,}+ or off Amazon's ladder, max empty: open). Other columns are copied."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="the spreadsheet's CSV export")
        parser.add_argument("target", type=Path, help="the training CSV to write")
        parser.add_argument(
            "--badge-column", default="bought_in_past_month", help="the badge's column (default bought_in_past_month)"
        )
        parser.add_argument("--skip-bad-rows", action="store_true", help="leave out rows whose badge is unreadable")

    def handle(self, *args, source: Path, target: Path, badge_column: str, skip_bad_rows: bool, **options):
        if source.resolve() == target.resolve():
            raise CommandError(
                f"{target} is the spreadsheet being read: name another file to write, so its badges are kept."
            )
        try:
            written, skipped = convert(source, target, badge_column, skip_bad_rows=skip_bad_rows)
        except BadgeError as exc:
            raise CommandError(str(exc)) from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{source} is not UTF-8 text (byte {exc.start}).") from exc
        except OSError as exc:
            raise CommandError(f"Cannot read {source} or write {target}: {exc.strerror or exc}.") from exc
        except csv.Error as exc:
            raise CommandError(f"{source} is not a readable CSV: {exc}.") from exc
        note = f", {skipped:,} bad rows left out" if skipped else ""
        rows = "row" if written == 1 else "rows"
        self.stdout.write(self.style.SUCCESS(f"Wrote {written:,} {rows} to {target}{note}."))
