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

# HTTPS: behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 3600))
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
