"""Formatting filters for evaluation pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(value: object, digits: int = 1) -> str:
    """A 0-1 rate as a percentage with ``digits`` decimals; "–" when there is none."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"{value * 100:.{digits}f}%"
