"""Settings for Writing-RL Studio, read from the environment.

Every setting has an embedded default so `make demo` runs on a bare machine: an SQLite
file and Celery's filesystem transport, both under ``var/``. Deployments set
``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis) and use
``webapp.settings_production``. The README has a table of every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("WRITING_RL_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


# -- Core ----------------------------------------------------------------------------------

# The fallback key is for local development only; settings_production refuses to start
# without SECRET_KEY.
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-insecure-key-do-not-use-in-production"
# Off unless set: a debug page shows settings and every route. scripts/demo.sh does not set it.
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "webapp.studio",
    "webapp.annotation",
    "webapp.evals",
    "webapp.ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# -- Browser security ------------------------------------------------------------------------

# Content-Security-Policy: scripts and styles only from our own static files (htmx included; no
# inline script, style element or style attribute), no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# The CSRF token lives in the session, not in a cookie of its own (htmx sends it from the page).
CSRF_USE_SESSIONS = True
X_FRAME_OPTIONS = "DENY"

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# -- Database --------------------------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'studio.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write at the same time: WAL plus IMMEDIATE transactions
    # make SQLite wait for the lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not memory, so a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_studio.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- Auth ----------------------------------------------------------------------------------

# Django's full set, for every password a person or a command sets.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after WRITING_RL_LOGIN_FAILURE_LIMIT failed logins for one
# user name from one address, that pair is locked out for WRITING_RL_LOGIN_COOLOFF_MIN minutes
# (HTTP 429). The address is REMOTE_ADDR: a forwarded-for header is not trusted.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("WRITING_RL_LOGIN_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("WRITING_RL_LOGIN_COOLOFF_MIN", 15)))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_CLIENT_IP_CALLABLE = "webapp.ops.security.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# -- I18N, static ------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# webapp/static (htmx, studio.css) belongs to no app, so it is listed here.
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Without DEBUG (the default), whitenoise serves the app's static files straight from their
# folders, so the demo needs no collectstatic; production collects them (settings_production).
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = VAR_DIR / "media"
# Uploaded datasets larger than this are refused with a message naming the limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
WRITING_RL_MAX_DATASET_BYTES = int(
    os.environ.get("WRITING_RL_MAX_DATASET_BYTES", 200 * 1024 * 1024)
)

# -- Celery ----------------------------------------------------------------------------------

CELERY_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control", "results"):
        (CELERY_DIR / sub).mkdir(parents=True, exist_ok=True)
    # The filesystem transport resolves relative folders against the worker's working
    # directory, so every folder is absolute; polling every 0.1 s keeps tasks snappy.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_DIR / "queue"),
        "data_folder_out": str(CELERY_DIR / "queue"),
        "processed_folder": str(CELERY_DIR / "processed"),
        "control_folder": str(CELERY_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
    _default_result_backend = f"file://{CELERY_DIR / 'results'}"
else:
    # Redis: the visibility timeout must outlast the longest task (a training run), or Redis
    # re-delivers a message that is still being worked on.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 48 * 3600)),
    }
    _default_result_backend = CELERY_BROKER_URL
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or _default_result_backend
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# -- Models and judges -------------------------------------------------------------------------

# The policy a new run starts from: a registered name or a local Hugging Face checkpoint path.
WRITING_RL_POLICY = os.environ.get("WRITING_RL_POLICY", "smollm2-135m-instruct")
# Model endpoints (judges, scorers, writers) are deployment configuration, not form input:
# WRITING_RL_ENDPOINTS (JSON, or the path of a JSON/TOML file) declares them — name, kind,
# base URL, models, the *name* of the variable holding the key, price, structured output —
# and WRITING_RL_JUDGE_KIND/BASE_URL/MODEL/API_KEY_ENV still declare one (named "judge") and
# the default judge of new runs. Read by rl_engine.judging.endpoints, checked at start-up
# (webapp.studio.apps); keys are never stored in the database nor rendered in a page.
WRITING_RL_MODEL_CACHE = Path(os.environ.get("WRITING_RL_MODEL_CACHE", VAR_DIR / "models"))
WRITING_RL_RUNS_DIR = Path(os.environ.get("WRITING_RL_RUNS_DIR", VAR_DIR / "runs"))
# A running run whose worker has not sent a heartbeat for this long may be taken over (and
# resumed from its last checkpoint) when its task is delivered again.
WRITING_RL_RUN_STALE_S = int(os.environ.get("WRITING_RL_RUN_STALE_S", 180))
# A worker's database session left idle inside a transaction this long is ended by PostgreSQL
# (idle_in_transaction_session_timeout, set by workers only; 0 = never). A worker frozen in the
# middle of a fenced write holds its job row's lock; ending its session releases the lock, so
# the job can be taken over. Keep it well under WRITING_RL_RUN_STALE_S.
WRITING_RL_IDLE_TX_TIMEOUT_S = float(os.environ.get("WRITING_RL_IDLE_TX_TIMEOUT_S", 60))
# How often Celery beat looks for such jobs (of every kind) and sends their task again
# (0 = never); see docs/reliability.md.
WRITING_RL_STALE_SWEEP_S = int(os.environ.get("WRITING_RL_STALE_SWEEP_S", 60))
# A waiting job whose task was sent this long ago and that no worker claimed may have lost its
# message (a broker restarted without persistence): the sweep sends it again.
WRITING_RL_QUEUED_GRACE_S = int(os.environ.get("WRITING_RL_QUEUED_GRACE_S", 600))
# A waiting job whose task was never sent (the broker was down) is sent by the sweep once
# it is this old.
WRITING_RL_UNSENT_GRACE_S = int(os.environ.get("WRITING_RL_UNSENT_GRACE_S", 5))
CELERY_BEAT_SCHEDULE = (
    {
        "recover-lost-work": {
            "task": "workers.tasks.system.recover_lost_work",
            "schedule": float(WRITING_RL_STALE_SWEEP_S),
            # A sweep waiting behind a long task is stale once the next one is due.
            "options": {"expires": float(WRITING_RL_STALE_SWEEP_S)},
        }
    }
    if WRITING_RL_STALE_SWEEP_S > 0
    else {}
)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Token that protects the internal API used by the verl reward hook (empty = API disabled).
WRITING_RL_INTERNAL_API_TOKEN = os.environ.get("WRITING_RL_INTERNAL_API_TOKEN", "")
# Where a run's policy may come from: a registered name, or a checkpoint directory under one of
# these roots (plus the runs directory, whose checkpoints later runs start from).
WRITING_RL_MODEL_ROOTS = [
    Path(p).resolve() for p in env_list("WRITING_RL_MODEL_ROOTS", str(WRITING_RL_MODEL_CACHE))
]

# -- Operations endpoints ----------------------------------------------------------------------

# Bearer token for /metrics and for the details of /healthz (empty = no token accepted).
WRITING_RL_OPS_TOKEN = os.environ.get("WRITING_RL_OPS_TOKEN", "")
# Networks (CIDR, comma-separated) whose addresses may scrape /metrics without the token,
# e.g. the Prometheus container's network. Matched against REMOTE_ADDR.
WRITING_RL_METRICS_ALLOW = env_list("WRITING_RL_METRICS_ALLOW", "")
# /healthz keeps a worker ping answer this many seconds (a ping waits up to the ping timeout).
WRITING_RL_HEALTHZ_CACHE_S = float(os.environ.get("WRITING_RL_HEALTHZ_CACHE_S", 5))

# -- Bounds on untrusted input -----------------------------------------------------------------

# Imports: a text field (a prompt, a reference) longer than this is refused, as is a file with
# more instructions, deeper JSON nesting, or more decompressed bytes (parquet pages) than these.
WRITING_RL_MAX_FIELD_CHARS = int(os.environ.get("WRITING_RL_MAX_FIELD_CHARS", 2_000_000))
WRITING_RL_MAX_IMPORT_ITEMS = int(os.environ.get("WRITING_RL_MAX_IMPORT_ITEMS", 200_000))
WRITING_RL_MAX_JSON_DEPTH = int(os.environ.get("WRITING_RL_MAX_JSON_DEPTH", 20))

# -- Logging ---------------------------------------------------------------------------------

# Every handler redacts URL passwords and the deployment's secrets from what it writes; error
# pages do the same through the exception reporter filter.
DEFAULT_EXCEPTION_REPORTER_FILTER = "webapp.ops.security.SecretRedactingFilter"
DEFAULT_EXCEPTION_REPORTER = "webapp.ops.security.RedactingExceptionReporter"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "webapp.ops.security.RedactSecretsLogFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
