"""Filters for the annotation pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def rate(value: float | None, digits: int = 3) -> str:
    """A share with ``digits`` decimals, or an en dash when there is none yet."""
    if value is None:
        return "–"
    return f"{value:.{int(digits)}f}"
