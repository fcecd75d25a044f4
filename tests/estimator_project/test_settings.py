"""Settings come from the environment; production refuses to start without a SECRET_KEY."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from core import mongo
from modelops.startup import on_server_start
from tests.helpers import run_django, run_python

ROOT = Path(__file__).resolve().parent.parent.parent


def test_missing_secret_key_with_debug_off_stops_start_up_with_a_clear_message(tmp_path):
    result = run_django({"DEBUG": "false"})

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "started" not in result.stdout


def test_debug_on_starts_without_a_key():
    result = run_django({"DEBUG": "true"})

    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_key_from_the_environment_starts_with_debug_off():
    result = run_django({"SECRET_KEY": "x" * 50})

    assert result.returncode == 0, result.stderr


ONLY_FROM_THE_ENVIRONMENT = {"DJANGO_ENV_FILE"}  # says which file to read, so it cannot be in one


def test_env_example_lists_every_variable_the_service_reads():
    read = set()
    for source in (
        "estimator_project/settings.py",
        "estimator_project/gunicorn.conf.py",
        "core/observability.py",
    ):
        text = (ROOT / source).read_text()
        read |= set(re.findall(r"env\.\w+\(\s*\"([A-Z_]+)\"", text))
        read |= set(re.findall(r"os\.environ\.get\(\s*[\"']([A-Z_]+)[\"']", text))
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))

    assert read, "found no settings: the pattern above is stale"
    for name in ONLY_FROM_THE_ENVIRONMENT:
        assert name in (ROOT / ".env.example").read_text()
    read -= ONLY_FROM_THE_ENVIRONMENT
    assert read == listed, f"read but not listed: {read - listed}; listed but not read: {listed - read}"


def test_env_example_has_no_secret():
    assert re.search(r"^SECRET_KEY=$", (ROOT / ".env.example").read_text(), re.MULTILINE)


class TestEmbeddedStoreWarning:
    def test_server_start_warns_once_that_data_is_in_memory(self, settings, caplog):
        settings.MONGO_URI = ""
        mongo.reset()

        with caplog.at_level(logging.WARNING):
            on_server_start()

        warnings = [record for record in caplog.records if record.getMessage() == mongo.EMBEDDED_STORE_WARNING]
        assert len(warnings) == 1
        mongo.reset()

    def test_no_warning_with_a_mongo_uri(self, settings, caplog):
        settings.MONGO_URI = "mongodb://127.0.0.1:1/never-contacted"
        mongo.reset()

        with caplog.at_level(logging.WARNING):
            on_server_start()

        assert mongo.EMBEDDED_STORE_WARNING not in caplog.text
        mongo.reset()


@pytest.mark.parametrize(
    ("uri", "name", "expected"),
    [
        ("", "", "estimator"),
        ("mongodb://db:27017/estimations", "", "estimations"),
        ("mongodb://db:27017/estimations", "other", "other"),
        ("mongodb://db:27017/", "", "estimator"),
    ],
)
def test_database_name(settings, uri, name, expected):
    settings.MONGO_URI, settings.MONGO_DB_NAME = uri, name

    assert mongo.database_name() == expected


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))

    missing = {name for name in listed | ONLY_FROM_THE_ENVIRONMENT if f"| `{name}` |" not in readme}

    assert not missing, f"README's settings table lacks {missing}"


def test_production_settings_come_from_the_environment():
    result = run_django(
        {
            "SECRET_KEY": "x" * 50,
            "ALLOWED_HOSTS": "api.example.com,api",
            "CSRF_TRUSTED_ORIGINS": "https://api.example.com",
            "REDIS_URL": "redis://cache:6379/0",
            "HTTPS": "true",
            "X_DOMAINS": "https://shop.example",
        },
        show=(
            "ALLOWED_HOSTS CSRF_TRUSTED_ORIGINS CACHES SECURE_SSL_REDIRECT SECURE_HSTS_SECONDS "
            "SESSION_COOKIE_SECURE CORS_ALLOW_ALL_ORIGINS CORS_ALLOWED_ORIGINS DEBUG"
        ),
    )

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.splitlines()[-1])
    assert shown["ALLOWED_HOSTS"] == ["api.example.com", "api"]
    assert shown["CSRF_TRUSTED_ORIGINS"] == ["https://api.example.com"]
    assert shown["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache:6379/0",
    }
    assert shown["SECURE_SSL_REDIRECT"] and shown["SESSION_COOKIE_SECURE"] and shown["SECURE_HSTS_SECONDS"] > 0
    assert not shown["CORS_ALLOW_ALL_ORIGINS"] and shown["CORS_ALLOWED_ORIGINS"] == ["https://shop.example"]
    assert shown["DEBUG"] is False


def test_an_empty_metrics_directory_as_in_env_example_keeps_metrics_in_the_process(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PROMETHEUS_MULTIPROC_DIR=\nSECRET_KEY=" + "x" * 50 + "\n")
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    code = (
        "import django; django.setup(); from core import observability; "
        "from prometheus_client import values; observability.REQUESTS.labels('GET', 'home', '200').inc(); "
        "print(values.ValueClass.__name__)"
    )
    result = run_python(code, {"DJANGO_ENV_FILE": str(env_file)}, cwd=workdir)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != "MmapedValue"
    assert list(workdir.iterdir()) == []  # no counter_<pid>.db left in the working directory


class TestCacheLifetime:
    """CACHE_EXPIRES drives both Expires and Cache-Control's max-age; a CACHE_CONTROL that disagrees stops."""

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({}, ("max-age=20", 20)),
            ({"CACHE_EXPIRES": "60"}, ("max-age=60", 60)),
            ({"CACHE_EXPIRES": "60", "CACHE_CONTROL": ""}, ("max-age=60", 60)),  # as .env.example has it
            ({"CACHE_EXPIRES": "60", "CACHE_CONTROL": "public, max-age=60"}, ("public, max-age=60", 60)),
            ({"CACHE_EXPIRES": "0", "CACHE_CONTROL": "no-cache"}, ("no-cache", 0)),
        ],
    )
    def test_the_cache_control_follows_cache_expires(self, env, expected):
        result = run_django({"SECRET_KEY": "x" * 50, **env}, show="CACHE_CONTROL CACHE_EXPIRES")

        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout.splitlines()[-1])
        assert (shown["CACHE_CONTROL"], shown["CACHE_EXPIRES"]) == expected

    @pytest.mark.parametrize(
        ("env", "says"),
        [
            (
                {"CACHE_EXPIRES": "60", "CACHE_CONTROL": "max-age=20"},
                "CACHE_CONTROL='max-age=20' disagrees with CACHE_EXPIRES=60",
            ),
            ({"CACHE_EXPIRES": "20", "CACHE_CONTROL": "private, MAX-AGE=5"}, "or give it max-age=20"),
            ({"CACHE_EXPIRES": "-1"}, "CACHE_EXPIRES=-1: it is the seconds a GET answer stays fresh"),
        ],
    )
    def test_a_disagreement_stops_start_up_saying_what_to_change(self, env, says):
        result = run_django({"SECRET_KEY": "x" * 50, **env})

        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and says in result.stderr
        assert "started" not in result.stdout

    def test_a_get_is_fresh_for_cache_expires_in_both_headers(self):
        code = (
            "import django, time; django.setup(); from django.test import Client; "
            "from email.utils import parsedate_to_datetime; r = Client().get('/'); "
            "print(r.status_code, r['Cache-Control'], parsedate_to_datetime(r['Expires']).timestamp() - time.time())"
        )
        result = run_python(code, {"SECRET_KEY": "x" * 50, "CACHE_EXPIRES": "60", "ALLOWED_HOSTS": "testserver"})

        assert result.returncode == 0, result.stderr
        status, cache_control, expires_in = result.stdout.split()
        assert (status, cache_control) == ("200", "max-age=60")
        assert 58 <= float(expires_in) <= 61  # Expires is whole seconds: up to 1 s early


def test_a_management_command_leaves_no_metrics_in_the_servers_shared_folder(tmp_path):
    # Given the folder the image's workers share (PROMETHEUS_MULTIPROC_DIR), when a command runs beside them
    # (docker compose exec api python manage.py ...), then it adds no file the workers' /metrics would count.
    shared = tmp_path / "prometheus"
    out = tmp_path / "s.csv"

    result = run_python(
        "import runpy, sys; "
        f"sys.argv = ['manage.py', 'make_sample_data', '--rows', '10', '--out', {str(out)!r}]; "
        "runpy.run_path('manage.py', run_name='__main__')",
        {"SECRET_KEY": "x" * 50, "PROMETHEUS_MULTIPROC_DIR": str(shared)},
    )

    assert result.returncode == 0, result.stderr
    assert not shared.exists() or not any(shared.iterdir()), sorted(p.name for p in shared.iterdir())


CHECKED_READERS = re.compile(r"env\.(int|float|bool|choice)\(\s*\"([A-Z_]+)\"")
NOT_A_VALUE = (
    "import importlib, os, sys; from django.core.exceptions import ImproperlyConfigured\n"
    "for name in NAMES:\n"
    "    os.environ[name] = 'abc'\n"
    "    sys.modules.pop('estimator_project.settings', None)\n"
    "    try:\n"
    "        importlib.import_module('estimator_project.settings')\n"
    "        print(name, 'STARTED')\n"
    "    except ImproperlyConfigured as error:\n"
    "        print(error)\n"
    "    except Exception as error:\n"
    "        print(name, 'RAW', type(error).__name__, error)\n"
    "    del os.environ[name]\n"
)


class TestEveryTypedSettingIsChecked:
    """An int, number, boolean or choice setting that cannot be used stops start-up with ImproperlyConfigured
    naming the setting, what it takes and what it got; never a ValueError, nor a value silently read."""

    def test_a_value_of_the_wrong_kind_in_any_of_them_is_refused_by_name(self):
        names = [name for _, name in CHECKED_READERS.findall((ROOT / "estimator_project/settings.py").read_text())]
        assert len(names) > 20, "found few settings: the pattern above is stale"

        result = run_python(f"NAMES = {names!r}\n{NOT_A_VALUE}", {"SECRET_KEY": "x" * 50})

        assert result.returncode == 0, result.stderr
        said = dict(zip(names, result.stdout.splitlines(), strict=True))
        for name, message in said.items():
            assert message.startswith(f"{name}='abc': it takes "), message
            assert "; unset, it is " in message, message

    @pytest.mark.parametrize(
        ("env", "says"),
        [
            ({"MONGO_TIMEOUT_MS": "abc"}, "MONGO_TIMEOUT_MS='abc': it takes a whole number, 0 or more (0: no limit)"),
            ({"MONGO_TIMEOUT_MS": "-5"}, "MONGO_TIMEOUT_MS='-5': it takes a whole number, 0 or more"),
            (
                {"MONGO_SERVER_SELECTION_TIMEOUT_MS": "0"},
                "MONGO_SERVER_SELECTION_TIMEOUT_MS='0': it takes a whole number, 1 or more",
            ),
            ({"PAGINATION_LIMIT": "-1"}, "PAGINATION_LIMIT='-1': it takes a whole number, 1 or more; unset, it is 50"),
            ({"PAGINATION_DEFAULT": "0"}, "PAGINATION_DEFAULT='0': it takes a whole number, 1 or more"),
            ({"PAGINATION_DEFAULT": "80"}, "PAGINATION_DEFAULT=80 is more than PAGINATION_LIMIT=50"),
            (
                {"PAGINATION_DEFAULT": "30", "PAGINATION_LIMIT": "20"},
                "PAGINATION_DEFAULT=30 is more than PAGINATION_LIMIT=20",
            ),
            ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES='0': it takes a whole number, 1 or more"),
            ({"BULK_MAX_ITEMS": "1.5"}, "BULK_MAX_ITEMS='1.5': it takes a whole number, 1 or more"),
            ({"CLIENT_BODY_TIMEOUT": "10s"}, "CLIENT_BODY_TIMEOUT='10s': it takes a number, 0 or more (0: no limit)"),
            ({"MODEL_REFRESH_SECONDS": "inf"}, "MODEL_REFRESH_SECONDS='inf': it takes a number, 0 or more"),
            ({"DEBUG": "maybe"}, "DEBUG='maybe': it takes true or false (or 1/0, yes/no, on/off); unset, it is false"),
            ({"ESTIMATION_TTL_KEEP_ACTUALS": "2"}, "ESTIMATION_TTL_KEEP_ACTUALS='2': it takes true or false"),
            ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml': it takes plain or json; unset, it is plain"),
            ({"LOG_LEVEL": "loud"}, "LOG_LEVEL='loud': it takes one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
            ({"MONGO_URI": "http://user:hunter2@x"}, "MONGO_URI must start with mongodb:// or mongodb+srv://"),
        ],
    )
    def test_a_value_it_cannot_use_stops_start_up_saying_what_it_takes(self, env, says):
        result = run_django({"SECRET_KEY": "x" * 50, **env})

        assert result.returncode != 0
        assert "ImproperlyConfigured" in result.stderr and says in result.stderr, result.stderr[-600:]
        assert "ValueError" not in result.stderr
        assert "started" not in result.stdout
        assert "hunter2" not in result.stderr  # a URI's password is never repeated

    def test_the_values_it_takes_start_as_read(self):
        result = run_django(
            {
                "SECRET_KEY": "x" * 50,
                "DEBUG": " No ",
                "HTTPS": "1",
                "ALLOW_ANONYMOUS_WRITES": "yes",
                "ESTIMATION_TTL_KEEP_ACTUALS": "",  # empty: unset, as .env.example has its empty settings
                "LOG_FORMAT": "JSON",
                "LOG_LEVEL": "warning",
                "MONGO_TIMEOUT_MS": "0",
                "PAGINATION_DEFAULT": "50",
                "CLIENT_BODY_TIMEOUT": "2.5",
            },
            show=(
                "DEBUG HTTPS ALLOW_ANONYMOUS_WRITES ESTIMATION_TTL_KEEP_ACTUALS LOG_FORMAT LOG_LEVEL MONGO_TIMEOUT_MS "
                "PAGINATION_DEFAULT PAGINATION_LIMIT CLIENT_BODY_TIMEOUT"
            ),
        )

        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1]) == {
            "DEBUG": False,
            "HTTPS": True,
            "ALLOW_ANONYMOUS_WRITES": True,
            "ESTIMATION_TTL_KEEP_ACTUALS": True,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "WARNING",
            "MONGO_TIMEOUT_MS": 0,
            "PAGINATION_DEFAULT": 50,
            "PAGINATION_LIMIT": 50,
            "CLIENT_BODY_TIMEOUT": 2.5,
        }
