"""Settings for the test run: the project's settings with a test-only key (not a secret)."""

import os

# A developer's .env (its MONGO_URI, say) must not reach the tests.
os.environ["DJANGO_ENV_FILE"] = os.devnull
os.environ.setdefault("SECRET_KEY", "test-only-key-not-used-anywhere-else")
os.environ.pop("MONGO_URI", None)  # tests choose their store through fixtures

from estimator_project.settings import *  # noqa: E402,F403
