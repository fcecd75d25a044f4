#!/usr/bin/env python
"""Django's command-line utility for the sales estimator."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "estimator_project.settings")
    # Only the server's workers are scraped. A command's metrics file in the shared folder would be added to
    # theirs for as long as the folder lives: gunicorn never sees the command end, so never marks it dead.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
