"""Small text filters for the studio templates, cheap enough for long tables."""

from __future__ import annotations

import json
from datetime import datetime

from django import template
from django.utils import timezone

from webapp.studio.token_usage import job_usage_totals

register = template.Library()


@register.filter(is_safe=False)
def clip(text: object, length: int = 100) -> str:
    """The first ``length`` characters, with "…" when cut. Unlike ``truncatechars`` it does not
    walk the text character by character, which matters on a 50-row table of long prompts."""
    value = "" if text is None else str(text)
    if len(value) <= length:
        return value
    return value[: max(length - 1, 0)].rstrip() + "…"


_STAMP_FORMATS = {"": "%Y-%m-%d %H:%M", "s": "%Y-%m-%d %H:%M:%S", "t": "%H:%M:%S"}


@register.filter
def stamp(moment: datetime | None, variant: str = "") -> str:
    """A timestamp in the current time zone: "2026-11-25 17:40" ("s": with seconds, "t": the
    time only). strftime costs a tenth of the ``date`` filter, which adds up on long tables."""
    if moment is None:
        return ""
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return moment.strftime(_STAMP_FORMATS.get(variant, _STAMP_FORMATS[""]))


@register.filter
def fixed(number: float | None, places: int = 2) -> str:
    """``number`` with ``places`` decimals, "—" for None (``floatformat`` goes through Decimal
    and costs ten times more)."""
    if number is None:
        return "—"
    return f"{number:.{int(places)}f}"


@register.filter
def share(rate: float | None, unknown: str = "unknown") -> str:
    """A 0-1 rate as a whole percentage; ``unknown`` for None (no verdict is not "0 %")."""
    if rate is None:
        return unknown
    return f"{rate:.0%}"


@register.filter
def count(number: float | None) -> str:
    """A count with thousands separators ("—" for None); fractions rounded."""
    if number is None:
        return "—"
    return f"{round(number):,}"


@register.filter
def criteria_rows(criteria: object) -> list[tuple[str, str]]:
    """Per-query criteria as readable (name, text) rows: a WritingBench checklist (a list of
    dicts with a name and a description, plus any other keys), a plain dict, a list of
    strings, or text. Values that are themselves structured are shown as compact JSON."""

    def text(value: object) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, sort_keys=True)

    if criteria is None or criteria == "":
        return []
    if isinstance(criteria, str):
        return [("", criteria)]
    if isinstance(criteria, dict):
        return [(str(key), text(value)) for key, value in criteria.items()]
    if isinstance(criteria, list):
        rows = []
        for index, entry in enumerate(criteria, start=1):
            if isinstance(entry, dict):
                entry = dict(entry)
                name = entry.pop("name", None) or entry.pop("title", None) or f"{index}."
                body = entry.pop("criteria_description", None) or entry.pop("description", None)
                parts = [text(body)] if body is not None else []
                parts += [f"{key}: {text(value)}" for key, value in entry.items()]
                rows.append((str(name), " — ".join(parts)))
            else:
                rows.append((f"{index}.", text(entry)))
        return rows
    return [("", text(criteria))]


@register.filter
def money(amount: float | None) -> str:
    """A cost in the deployment's currency: 2 decimals from 1 up, 3 significant digits below
    ("—" for None: no declared price)."""
    if amount is None:
        return "—"
    if amount >= 1:
        return f"{amount:,.2f}"
    return f"{amount:.3g}"


@register.filter
def job_usage(job: object) -> object:
    """What a pipeline job's model calls cost (:func:`~webapp.studio.token_usage.job_usage_totals`),
    for :func:`token_line`."""
    return job_usage_totals(job)  # type: ignore[arg-type]


@register.filter
def token_line(totals: object) -> str:
    """A :class:`~webapp.studio.token_usage.TokenTotals` in words: tokens (prompt +
    completion), requests, and the cost at the declared price when there is one."""
    tokens = getattr(totals, "tokens", None)
    if tokens is None:
        return ""
    prompt, completion = totals.prompt_tokens, totals.completion_tokens  # type: ignore[attr-defined]
    line = f"{tokens:,} tokens ({prompt:,} prompt + {completion:,} completion)"
    attempts = getattr(totals, "attempts", 0)
    if attempts:
        line += f" in {attempts:,} request{'s' if attempts != 1 else ''}"
    cost = getattr(totals, "cost", None)
    if cost is not None:
        line += f" · cost {money(cost)}"
        if getattr(totals, "partly_priced", False):
            line += " (priced endpoints only)"
    return line
