"""Settings for the test run: the project's settings with a test-only key (not a secret)."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-key-not-used-anywhere-else")
os.environ.pop("MONGO_URI", None)  # tests choose their store through fixtures

from estimator_project.settings import *  # noqa: E402,F403
