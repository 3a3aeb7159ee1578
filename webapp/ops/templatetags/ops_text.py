"""``{{ text|redact }}``: the text without URL passwords or the deployment's secret values
(:func:`webapp.ops.security.redact`), for pages that show what a worker wrote."""

from __future__ import annotations

from django import template

from webapp.ops.security import redact as redact_text

register = template.Library()


@register.filter
def redact(text: object) -> str:
    return redact_text(str(text))
