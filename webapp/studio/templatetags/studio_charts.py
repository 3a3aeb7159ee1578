"""The chart template tags (``{% load studio_charts %}``): the titled figures of
:mod:`webapp.charts`, registered for templates."""

from __future__ import annotations

from django import template

from webapp.charts import histogram, line_chart, stacked_tiers, tier_timeline

register = template.Library()

for _chart in (line_chart, stacked_tiers, histogram, tier_timeline):
    register.simple_tag(_chart)
