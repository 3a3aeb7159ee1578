"""Production settings: the defaults of ``webapp.settings`` with the unsafe ones refused.

Start with ``DJANGO_SETTINGS_MODULE=webapp.settings_production``. It refuses to start
without ``SECRET_KEY`` and always runs with ``DEBUG`` off.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

from webapp.settings import *  # noqa: F403
from webapp.settings import env_bool

if not os.environ.get("SECRET_KEY"):
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Production settings refuse to start without one: "
        "generate it with `python -c 'import secrets; print(secrets.token_urlsafe(50))'` "
        "and pass it in the environment."
    )
SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

# HTTPS: behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Health checks, scrapes and the verl hook's internal API come from inside the deployment's
# network (container health checks, Prometheus, the Ray cluster) over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$", r"^internal/"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 365 * 24 * 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The CSRF token is bound to the session (webapp.settings sets CSRF_USE_SESSIONS); htmx sends it
# from the page (hx-headers). The CSP of webapp.settings applies unchanged.
CSRF_USE_SESSIONS = True
CSRF_COOKIE_HTTPONLY = True
# A pooled connection that died with the database is replaced instead of failing a request.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405

for _name, _purpose in (
    ("WRITING_RL_INTERNAL_API_TOKEN", "disable the internal API"),
    ("WRITING_RL_OPS_TOKEN", "accept no token on /metrics and /healthz"),
):
    _value = globals().get(_name) or ""
    if _value and len(_value) < 32:
        raise ImproperlyConfigured(
            f"{_name} is shorter than 32 characters. Use a random one: "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`, or leave it empty "
            f"to {_purpose}."
        )

# -- Operations ------------------------------------------------------------------------------

# /healthz waits this long for Celery workers to answer a ping.
WRITING_RL_HEALTHZ_PING_TIMEOUT_S = float(os.environ.get("WRITING_RL_HEALTHZ_PING_TIMEOUT_S", 1.0))
# /metrics computes judge latency, error rate and steps/s over this window.
WRITING_RL_METRICS_WINDOW_S = int(os.environ.get("WRITING_RL_METRICS_WINDOW_S", 900))

# -- Celery time limits ----------------------------------------------------------------------

# Ordinary tasks (imports, pipeline jobs, judging batches) get a soft limit that raises inside
# the task, then a hard one that kills the child. GPU tasks (training runs, generation) get their
# own, far longer, limits through webapp.ops.celery_limits.
# (6 h: a pipeline job scoring references for thousands of samples takes hours.)
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600))
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 6 * 3600 + 300))
WRITING_RL_GPU_TASK_TIME_LIMIT = int(os.environ.get("WRITING_RL_GPU_TASK_TIME_LIMIT", 72 * 3600))
CELERY_TASK_ANNOTATIONS = [
    "webapp.ops.celery_limits:GpuTaskTimeLimits",
]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True

# Redis re-delivers a message not acknowledged within the visibility timeout; with late acks
# the longest task must finish first, or a running training would be started a second time.
if not CELERY_BROKER_URL.startswith("filesystem://"):  # noqa: F405
    _longest = max(CELERY_TASK_TIME_LIMIT, WRITING_RL_GPU_TASK_TIME_LIMIT)
    _visibility = int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", _longest + 3600))
    if _visibility <= _longest:
        raise ImproperlyConfigured(
            f"CELERY_VISIBILITY_TIMEOUT={_visibility} s must exceed the longest task time limit "
            f"({_longest} s), or Redis re-delivers running tasks; raise it or lower "
            "WRITING_RL_GPU_TASK_TIME_LIMIT"
        )
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility}
    CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": _visibility}

# -- Logging: one JSON object per line ---------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "webapp.ops.logging.JsonFormatter"}},
    "filters": {"redact": {"()": "webapp.ops.security.RedactSecretsLogFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact"]}
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Celery keeps these handlers because it is told not to hijack the root logger.
        "celery": {"level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
