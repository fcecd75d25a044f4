"""Settings for the sales estimator.

Every setting is read from the environment here and nowhere else; `.env.example` lists them all
with their defaults. A `.env` file beside manage.py is read when present.
"""

import os
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.environment import CheckedEnv

BASE_DIR = Path(__file__).resolve().parent.parent


env = CheckedEnv()
# DJANGO_ENV_FILE can only come from the environment: which file to read (tests read none).
environ.Env.read_env(os.environ.get("DJANGO_ENV_FILE", BASE_DIR / ".env"), overwrite=False)
# Empty means unset, as .env.example has it. prometheus_client (imported after the settings) turns
# multi-process for any value, even "", and would then write its files into the working directory.
# A folder that does not exist yet is made here, for every process that loads the settings (commands,
# gunicorn workers): prometheus_client writes a file there as soon as a metric is created, and a
# missing folder would fail the logging set-up of every `manage.py` command.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
else:
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

DEBUG = env.bool("DEBUG", default=False)

# Production fails fast: without DEBUG there is no fallback key.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable to a long random "
            "string (python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=true for local development."
        )
    SECRET_KEY = "insecure-development-only-key"  # only reachable with DEBUG on

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "ml",
    "estimations",
    "modelops",
]

MIDDLEWARE = [
    "core.observability.RequestMiddleware",
    "core.request_body.ChunkedBodyMiddleware",
    "core.deadlines.DatabaseDeadlineMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "estimator_project.urls"
WSGI_APPLICATION = "estimator_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

# The domain data lives in MongoDB through estimations.store; Django's ORM is not used.
DATABASES: dict = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Without collectstatic (tests, a first `runserver`) WhiteNoise serves straight from the apps.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

APPEND_SLASH = False

# --- Production hardening -------------------------------------------------------------------
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# A failed CSRF check answers in the error envelope too, not Django's HTML page.
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"
# HTTPS=true: the site is served over HTTPS (directly or behind a proxy that sets X-Forwarded-Proto).
HTTPS = env.bool("HTTPS", default=False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_SSL_REDIRECT = HTTPS
# The health checks of an orchestrator come in plain HTTP on the container's own port (the compose
# healthcheck asks http://127.0.0.1:8000/health/ready): they are answered, never redirected.
SECURE_REDIRECT_EXEMPT = [r"^health/live$", r"^health/ready$"]
SECURE_HSTS_SECONDS = 31_536_000 if HTTPS else 0
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# The inspection page's login lives in a signed cookie: no database table is needed.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 8 * 3600

# Throttle counters (core/throttling.py): in Redis when REDIS_URL is set, else in MongoDB
# (MONGO_URI), else in this process (the embedded store). Either store is shared by every worker and host.
REDIS_URL = env.str("REDIS_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- MongoDB --------------------------------------------------------------------------------
# Unset: an embedded in-memory store (mongomock), for trying the service with nothing installed.
MONGO_URI = env.str("MONGO_URI", default="")
if MONGO_URI and not MONGO_URI.startswith(("mongodb://", "mongodb+srv://")):
    # Not repeated: a URI may hold a password.
    raise ImproperlyConfigured(
        "MONGO_URI must start with mongodb:// or mongodb+srv:// (for example mongodb://mongo:27017/estimations); "
        "leave it unset for the embedded store."
    )
# The database name: MONGO_DB_NAME, else the URI's path (mongodb://host/estimations), else this.
MONGO_DB_NAME = env.str("MONGO_DB_NAME", default="")
MONGO_DEFAULT_DB_NAME = "estimator"
MONGO_SERVER_SELECTION_TIMEOUT_MS = env.int("MONGO_SERVER_SELECTION_TIMEOUT_MS", default=3000, at_least=1)
# A database that stops answering (hung, frozen, partitioned) must not hold a request: the database work
# of one API request (every operation it makes, retries included) gets MONGO_TIMEOUT_MS in all, then the
# request answers 503 (core/deadlines.py; docs/reliability.md). Within a request this also
# bounds waiting for an unreachable server (PyMongo then selects within what is left of the budget).
# The model endpoints (training uploads, replays) and what an export streams after its first batch are
# bounded per network wait by MONGO_SOCKET_TIMEOUT_MS instead. Opening a connection waits at most
# MONGO_CONNECT_TIMEOUT_MS, and a majority write waits at most MONGO_WTIMEOUT_MS for the other members
# outside a request's budget.
MONGO_TIMEOUT_MS = env.int("MONGO_TIMEOUT_MS", default=3000, at_least=0, note="0: no limit")
MONGO_CONNECT_TIMEOUT_MS = env.int("MONGO_CONNECT_TIMEOUT_MS", default=2000, at_least=0, note="0: no limit")
MONGO_SOCKET_TIMEOUT_MS = env.int("MONGO_SOCKET_TIMEOUT_MS", default=30000, at_least=0, note="0: no limit")
MONGO_WTIMEOUT_MS = env.int("MONGO_WTIMEOUT_MS", default=5000, at_least=0, note="0: no limit")
# Index roll-out (docs/operations.md, "Indexes"). ENSURE_INDEXES is what the start chain does (`manage.py
# ensure_indexes --at-start`): "on" builds what is missing or changed; "defer" builds nothing and logs what
# is, for an operator to build with `manage.py ensure_indexes`. A collection's index work waits at most
# INDEX_BUILD_TIMEOUT_MS. On a replica set, a build waits for INDEX_COMMIT_QUORUM members to finish it
# (empty: MongoDB's default, "votingMembers", every voting member: one member down holds it for ever).
# /health/ready reads the indexes again at most every INDEX_CHECK_SECONDS in each process.
ENSURE_INDEXES = env.str("ENSURE_INDEXES", default="on")
if ENSURE_INDEXES not in ("on", "defer"):
    raise ImproperlyConfigured(
        f"ENSURE_INDEXES={ENSURE_INDEXES!r}: 'on' (the start chain builds the indexes) or 'defer' (it only "
        "reports what is missing; build with python manage.py ensure_indexes)."
    )
INDEX_BUILD_TIMEOUT_MS = env.int("INDEX_BUILD_TIMEOUT_MS", default=60_000)
if INDEX_BUILD_TIMEOUT_MS <= 0:
    raise ImproperlyConfigured(
        f"INDEX_BUILD_TIMEOUT_MS={INDEX_BUILD_TIMEOUT_MS}: give the milliseconds an index build may take, "
        "more than 0 (a long build: run python manage.py ensure_indexes with a larger value)."
    )
INDEX_COMMIT_QUORUM = env.str("INDEX_COMMIT_QUORUM", default="majority")
INDEX_CHECK_SECONDS = env.float("INDEX_CHECK_SECONDS", default=60.0, at_least=0)
# Acknowledged writes: "majority" (the default; on a replica set a write survives a failover), or a
# number of members such as 1.
MONGO_WRITE_CONCERN = env.str("MONGO_WRITE_CONCERN", default="majority")
# Where GET one, the list (and its count) and the CSV export read on a replica set (docs/mongodb.md).
# primaryPreferred: from the primary whenever there is one, from a secondary (maybe slightly behind) while
# there is none, as during an election. Every other read (a write's checks, idempotency, models, keys,
# throttling) is from the primary. MONGO_MAX_STALENESS_SECONDS (0: no limit; else 90 or more) keeps those
# reads off a secondary that lags further behind the primary.
MONGO_READ_PREFERENCE = env.str("MONGO_READ_PREFERENCE", default="primaryPreferred")
MONGO_MAX_STALENESS_SECONDS = env.int("MONGO_MAX_STALENESS_SECONDS", default=0)
# /health/ready's database check: at most this long for each ping (the primary, then any member).
MONGO_READY_TIMEOUT_MS = env.int("MONGO_READY_TIMEOUT_MS", default=1500)
_READ_PREFERENCES = ("primary", "primaryPreferred", "secondary", "secondaryPreferred", "nearest")
if MONGO_READ_PREFERENCE not in _READ_PREFERENCES:
    raise ImproperlyConfigured(
        f"MONGO_READ_PREFERENCE={MONGO_READ_PREFERENCE!r}: give one of MongoDB's read preference modes: "
        f"{', '.join(_READ_PREFERENCES)} (the default, primaryPreferred, reads from a secondary only while "
        "there is no primary)."
    )
if MONGO_MAX_STALENESS_SECONDS < 0 or 0 < MONGO_MAX_STALENESS_SECONDS < 90:
    raise ImproperlyConfigured(
        f"MONGO_MAX_STALENESS_SECONDS={MONGO_MAX_STALENESS_SECONDS}: give 0 (no limit) or 90 seconds or more "
        "(MongoDB's smallest maxStalenessSeconds)."
    )
if MONGO_MAX_STALENESS_SECONDS and MONGO_READ_PREFERENCE == "primary":
    raise ImproperlyConfigured(
        "MONGO_MAX_STALENESS_SECONDS is set but MONGO_READ_PREFERENCE=primary never reads from a secondary: "
        "set MONGO_MAX_STALENESS_SECONDS=0, or choose another MONGO_READ_PREFERENCE."
    )
if MONGO_READY_TIMEOUT_MS <= 0:
    raise ImproperlyConfigured(
        f"MONGO_READY_TIMEOUT_MS={MONGO_READY_TIMEOUT_MS}: give the milliseconds /health/ready waits for each "
        "database ping, more than 0 (the default is 1500)."
    )
# The read preference is these settings' alone: a URI's own would apply to reads that must stay on the
# primary. The URI is not repeated here: it may hold a password.
_uri_read_options = re.findall(r"[?&](readpreference|readpreferencetags|maxstalenessseconds)=", MONGO_URI, re.I)
if _uri_read_options:
    raise ImproperlyConfigured(
        f"MONGO_URI sets {', '.join(sorted(set(_uri_read_options)))}: remove it from the URI and set "
        "MONGO_READ_PREFERENCE (and MONGO_MAX_STALENESS_SECONDS) instead. They apply to GET one, the list "
        "and the export; every other read is from the primary."
    )

# --- The estimations resource (Eve's names where Eve had the setting) -----------------------
# CACHE_EXPIRES (seconds) is how long a successful GET stays fresh: it drives both `Expires` and
# Cache-Control's max-age. CACHE_CONTROL defaults to "max-age=<CACHE_EXPIRES>"; one that names another
# max-age would give each answer two lifetimes (caches obey max-age, and Expires would lie), so it stops
# start-up. A CACHE_CONTROL without max-age (no-cache, private, ...) is sent as it is.
CACHE_EXPIRES = env.int("CACHE_EXPIRES", default=20)
CACHE_CONTROL = env.str("CACHE_CONTROL", default="") or f"max-age={CACHE_EXPIRES}"
if CACHE_EXPIRES < 0:
    raise ImproperlyConfigured(f"CACHE_EXPIRES={CACHE_EXPIRES}: it is the seconds a GET answer stays fresh, 0 or more.")
_max_age = re.search(r'(?:^|,)\s*max-age\s*=\s*"?(\d+)"?\s*(?:,|$)', CACHE_CONTROL, re.IGNORECASE)
if _max_age and int(_max_age.group(1)) != CACHE_EXPIRES:
    raise ImproperlyConfigured(
        f"CACHE_CONTROL={CACHE_CONTROL!r} disagrees with CACHE_EXPIRES={CACHE_EXPIRES}: CACHE_EXPIRES sets both "
        "Expires and Cache-Control's max-age. Leave CACHE_CONTROL empty (it becomes max-age=<CACHE_EXPIRES>), "
        f"or give it max-age={CACHE_EXPIRES}."
    )
PAGINATION_DEFAULT = env.int("PAGINATION_DEFAULT", default=25, at_least=1)
PAGINATION_LIMIT = env.int("PAGINATION_LIMIT", default=50, at_least=1)
if PAGINATION_DEFAULT > PAGINATION_LIMIT:
    raise ImproperlyConfigured(
        f"PAGINATION_DEFAULT={PAGINATION_DEFAULT} is more than PAGINATION_LIMIT={PAGINATION_LIMIT}, the largest page: "
        "give a PAGINATION_DEFAULT up to PAGINATION_LIMIT, or raise PAGINATION_LIMIT."
    )
# `page` costs time in proportion to what it skips: it may skip at most this many documents (400 past
# it); `after` (the _links.after token, keyset pagination) reads any depth at the cost of one page.
PAGINATION_MAX_SKIP = env.int("PAGINATION_MAX_SKIP", default=10000, at_least=0)
# A CSV export holds at most EXPORT_MAX_ROWS rows (more: 400 before anything is sent) and takes at most
# EXPORT_MAX_TIME_MS of database time in all (its cursor's maxTimeMS); 0: no bound (docs/api.md).
EXPORT_MAX_ROWS = env.int("EXPORT_MAX_ROWS", default=1_000_000, at_least=0)
EXPORT_MAX_TIME_MS = env.int("EXPORT_MAX_TIME_MS", default=120_000, at_least=0)
BULK_MAX_ITEMS = env.int("BULK_MAX_ITEMS", default=10000, at_least=1)
MAX_BODY_BYTES = env.int("MAX_BODY_BYTES", default=2 * 1024 * 1024, at_least=1)
# A request body must arrive within CLIENT_BODY_TIMEOUT seconds plus its size at CLIENT_BODY_MIN_RATE
# bytes a second, else 408 and the connection is closed (core/deadlines.py): a client that
# trickles its body holds no connection for long, with or without a proxy in front. 0: no limit.
CLIENT_BODY_TIMEOUT = env.float("CLIENT_BODY_TIMEOUT", default=10.0, at_least=0, note="0: no limit")
CLIENT_BODY_MIN_RATE = env.int("CLIENT_BODY_MIN_RATE", default=65536, at_least=0)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES
# Writing estimations without an API key ('write' scope). On for `make run`, off in docker compose.
ALLOW_ANONYMOUS_WRITES = env.bool("ALLOW_ANONYMOUS_WRITES", default=False)
# Requests per client address without a valid key (bad keys included), per valid API key, and sign-in
# attempts on /inspect/login per address ("" turns a limit off).
THROTTLE_ANON_RATE = env.str("THROTTLE_ANON_RATE", default="600/min")
THROTTLE_KEY_RATE = env.str("THROTTLE_KEY_RATE", default="6000/min")
THROTTLE_LOGIN_RATE = env.str("THROTTLE_LOGIN_RATE", default="10/min")
for _name in ("THROTTLE_ANON_RATE", "THROTTLE_KEY_RATE", "THROTTLE_LOGIN_RATE"):
    _rate = globals()[_name]
    if _rate and not re.fullmatch(r"[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|d|day)", _rate):
        raise ImproperlyConfigured(
            f"{_name}={_rate!r}: give requests per period, e.g. 600/min (periods: s, min, hour, day), or empty "
            "for no limit."
        )
# Proxies in front of the service, so the client address is read from X-Forwarded-For.
NUM_PROXIES = env.int("NUM_PROXIES", default=0, at_least=0)
DEFAULT_CATEGORY = env.str("DEFAULT_CATEGORY", default="books")
# The marketplace (ml.markets.CURRENCIES' codes) of an estimation that names none.
DEFAULT_MARKETPLACE = env.str("DEFAULT_MARKETPLACE", default="us")
# Retention: estimations older than this many days are removed by a MongoDB TTL index (0: kept forever).
# `manage.py ensure_indexes` applies a change. Estimations with recorded actuals are kept unless
# ESTIMATION_TTL_KEEP_ACTUALS is false: they are what live accuracy is measured on.
ESTIMATION_TTL_DAYS = env.int("ESTIMATION_TTL_DAYS", default=0)
# MongoDB takes an expireAfterSeconds of at most 2**31 - 1: 24,855 days.
ESTIMATION_TTL_MAX_DAYS = (2**31 - 1) // 86_400
if not 0 <= ESTIMATION_TTL_DAYS <= ESTIMATION_TTL_MAX_DAYS:
    raise ImproperlyConfigured(
        f"ESTIMATION_TTL_DAYS={ESTIMATION_TTL_DAYS}: give the days an estimation is kept, from 1 to "
        f"{ESTIMATION_TTL_MAX_DAYS:,} (MongoDB's longest TTL, 2,147,483,647 seconds), or 0 to keep them forever."
    )
ESTIMATION_TTL_KEEP_ACTUALS = env.bool("ESTIMATION_TTL_KEEP_ACTUALS", default=True)
# Most stored estimations one POST /models/{version}/replay re-estimates (the command has no limit).
REPLAY_MAX_SAMPLE = env.int("REPLAY_MAX_SAMPLE", default=100_000, at_least=1)

# --- The sales model ------------------------------------------------------------------------
# Signs model artifacts (HMAC-SHA256); unset: derived from SECRET_KEY. Changing it makes every stored
# version refuse to load until retrained.
MODEL_SIGNING_KEY = env.str("MODEL_SIGNING_KEY", default="")
# How often each API process checks for a newly activated model version.
MODEL_REFRESH_SECONDS = env.float("MODEL_REFRESH_SECONDS", default=2.0, at_least=0)
# Largest training CSV POST /models accepts (413 beyond); streamed to a temporary file, so MAX_BODY_BYTES
# does not apply to it.
MODEL_TRAINING_MAX_BYTES = env.int("MODEL_TRAINING_MAX_BYTES", default=100 * 1024 * 1024, at_least=1)
# What `make run` (and the embedded store at start) trains when no version is active.
DEFAULT_TRAINING_CSV = env.str("DEFAULT_TRAINING_CSV", default="") or str(BASE_DIR / "data" / "sample_sales.csv")

# --- CORS (Eve's X_DOMAINS / X_HEADERS / X_EXPOSE_HEADERS) ----------------------------------
X_DOMAINS = env.list("X_DOMAINS", default=["*"])
CORS_ALLOW_ALL_ORIGINS = X_DOMAINS == ["*"]
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else X_DOMAINS
CORS_ALLOW_HEADERS = [
    *env.list("X_HEADERS", default=["Content-Type", "Authorization"]),
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "Idempotency-Key",
]
CORS_EXPOSE_HEADERS = ["ETag", "Location", "Last-Modified", "X-Total-Count", "Idempotent-Replayed", "X-Request-ID"]
CORS_PREFLIGHT_MAX_AGE = env.int("X_MAX_AGE", default=21600, at_least=0)

# --- Django REST framework ------------------------------------------------------------------
REST_FRAMEWORK = {
    # A format or Accept the URL has no renderer for: 406 listing what it answers in (not DRF's 404).
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "core.negotiation.ExplainingContentNegotiation",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.LimitedJSONParser",
        "core.parsers.LimitedFormParser",
        "core.parsers.LimitedMultiPartParser",
    ],
    # API keys (manage.py create_api_key): reads are open, writes need a 'write' key unless
    # ALLOW_ANONYMOUS_WRITES, model management an 'admin' key.
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api_keys.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ClientRateThrottle"],
    "NUM_PROXIES": NUM_PROXIES,
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Amazon sales estimator",
    "DESCRIPTION": (
        "Estimates an Amazon product's monthly unit sales from its Best Seller Rank (BSR) and "
        "category, and keeps every estimate as a resource. Eve-compatible envelopes, links, "
        "etags, filtering, sorting and pagination."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.canonical_paths",
        "core.openapi.nullable_references",
    ],
    "ENUM_NAME_OVERRIDES": {
        "StatusOkEnum": ["OK"],
        "StatusErrEnum": ["ERR"],
        "ItemStatusEnum": ["OK", "ERR"],
    },
}

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), default="INFO")
# plain or json (one JSON object per line, for log collectors)
LOG_FORMAT = env.choice("LOG_FORMAT", ("plain", "json"), default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.observability.RequestIdFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"levelname": "level", "asctime": "time"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # One line per request comes from core.observability; Django's own would repeat it.
    "loggers": {"django.request": {"level": "ERROR"}},
}
