"""Settings for the test run: the project's settings with a test-only key (not a secret)."""

import os

# A developer's .env (its MONGO_URI, say) must not reach the tests.
os.environ["DJANGO_ENV_FILE"] = os.devnull
os.environ.setdefault("SECRET_KEY", "test-only-key-not-used-anywhere-else")
os.environ.pop("MONGO_URI", None)  # tests choose their store through fixtures

from estimator_project.settings import *  # noqa: E402,F403

# The API tests exercise writes without keys (as `make run` allows); tests/core/test_api_keys.py turns this
# off to test the keys. Throttling is tested on its own with small rates.
ALLOW_ANONYMOUS_WRITES = True
THROTTLE_ANON_RATE = ""
THROTTLE_KEY_RATE = ""
THROTTLE_LOGIN_RATE = ""
# nx-27017 (SQLite) stores a 10,000-row bulk insert far slower than MongoDB, and slower still on a loaded
# machine: the request budget is raised here; the tests of the budget set their own (test_mongo.py,
# test_faults.py).
MONGO_TIMEOUT_MS = 30_000
