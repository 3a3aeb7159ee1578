"""What keeps secrets out of pages and logs, and who may read the operations endpoints.

* :func:`redact` removes the password of every URL (``postgres://user:pw@host``) and every
  configured secret value (``SECRET_KEY``, the API and ops tokens, the values of the key
  variables the deployment declares) from a text. :class:`SecretRedactingFilter` applies it to
  Django's error reports (settings, frame variables, request data) and
  :class:`RedactSecretsLogFilter` to every log record the handlers write.
* :func:`has_ops_token` checks an ``Authorization: Bearer`` header against
  ``WRITING_RL_OPS_TOKEN`` in constant time; :func:`address_allowed` matches ``REMOTE_ADDR``
  against the networks of ``WRITING_RL_METRICS_ALLOW``. A forwarded-for header is never
  trusted: anyone can send one.
"""

from __future__ import annotations

import hmac
import html
import ipaddress
import logging
import os
import re
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "********"
# scheme://user:password@host -> scheme://user:********@host (also redis://:password@host).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(?=@)")
# Environment variables whose values are secrets by their name.
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASS|CREDENTIAL)", re.IGNORECASE)
_NOT_SECRET_SUFFIXES = ("_ENV", "_PATH", "_FILE", "_DIR")
# Shorter values are not worth hiding (and would blank ordinary words).
_MIN_SECRET_LEN = 8


def secret_values() -> list[str]:
    """Values that must never appear in a page or a log line, longest first."""
    values: set[str] = set()
    for name in ("SECRET_KEY", "WRITING_RL_INTERNAL_API_TOKEN", "WRITING_RL_OPS_TOKEN"):
        value = getattr(settings, name, "") if settings.configured else os.environ.get(name, "")
        if isinstance(value, str):
            values.add(value)
    for name, value in os.environ.items():
        # ..._API_KEY_ENV holds a variable's name, ..._PATH / _FILE / _DIR a location.
        if _SECRET_NAME.search(name) and not name.endswith(_NOT_SECRET_SUFFIXES):
            values.add(value)
    return sorted((v for v in values if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without URL passwords and without any secret value."""
    if not text:
        return text
    out = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    for value in secret_values() if secrets is None else secrets:
        if value in out:
            out = out.replace(value, MASK)
    return out


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):  # lazy objects (the CSRF token in META) pass as str too
        return redact(str(value))
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    return value


class SecretRedactingFilter(SafeExceptionReporterFilter):
    """Django's filter (which hides settings named like KEY, TOKEN, PASS, ...) plus URL
    passwords and secret values inside any setting, frame variable or request field."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL", flags=re.IGNORECASE
    )

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        return _redact_value(cleansed) if isinstance(cleansed, str | bytes) else cleansed

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        return [
            (name, _redact_value(value) if isinstance(value, str | bytes) else value)
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def get_post_parameters(self, request: Any) -> Any:
        params = super().get_post_parameters(request)
        if params is None or not hasattr(params, "copy"):
            return params
        cleansed = params.copy()
        for key in list(cleansed.keys()):
            values = cleansed.getlist(key) if hasattr(cleansed, "getlist") else [cleansed[key]]
            redacted = [_redact_value(v) for v in values]
            if hasattr(cleansed, "setlist"):
                cleansed.setlist(key, redacted)
            else:
                cleansed[key] = redacted[0]
        return cleansed

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {k: _redact_value(v) if isinstance(v, str) else v for k, v in meta.items()}


class RedactingExceptionReporter(ExceptionReporter):
    """Django's debug page and error e-mail, with the whole text redacted at the end: the
    exception's message and the source lines shown are not covered by the filter."""

    def get_traceback_html(self) -> str:
        secrets = secret_values()
        escaped = [html.escape(value) for value in secrets]
        return redact(str(super().get_traceback_html()), [*secrets, *escaped])

    def get_traceback_text(self) -> str:
        return redact(str(super().get_traceback_text()))


class RedactSecretsLogFilter(logging.Filter):
    """Rewrites each record's message (and exception text) without secrets; keeps the record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# -- who may read the operations endpoints -----------------------------------------------------


def client_ip(request: Any) -> str | None:
    """The peer address, for login throttling and the metrics allow-list."""
    return (getattr(request, "META", {}) or {}).get("REMOTE_ADDR") or None


def has_ops_token(request: HttpRequest) -> bool:
    expected = getattr(settings, "WRITING_RL_OPS_TOKEN", "") or ""
    if not expected:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8"), expected.encode("utf-8")
    )


def address_allowed(request: HttpRequest, networks: Iterable[str]) -> bool:
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for network in networks:
        try:
            if ip in ipaddress.ip_network(network, strict=False):
                return True
        except ValueError:
            continue
    return False
