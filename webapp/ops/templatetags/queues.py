"""``{% queue_wait row %}``: what a waiting job waits for (``partials/queue_wait.html``), on
every page that shows a job "queued". Renders nothing for a job that is not waiting.

A page that shows many jobs (the dataset's jobs table) looks each queue and the workers up
once: the lookups are kept for the rest of that template's rendering."""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Model

from webapp.ops.health import served_queues
from webapp.ops.queue_wait import is_waiting
from webapp.ops.queue_wait import queue_wait as find_queue_wait

register = template.Library()


@register.inclusion_tag("partials/queue_wait.html", takes_context=True)
def queue_wait(context: template.Context, row: Model, compact: bool = False) -> dict[str, Any]:
    cache = context.render_context.setdefault("queue_wait", {"states": {}, "served": None})
    wait = None
    if row is not None and is_waiting(row):  # no lookup for rows that do not wait
        if cache["served"] is None:
            cache["served"] = served_queues()
        wait = find_queue_wait(row, states=cache["states"], served=cache["served"])
    return {"wait": wait, "compact": compact}
