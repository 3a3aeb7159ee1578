"""Helpers shared by the studio views."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PAGE_SIZE = 50


def paginate(request: HttpRequest, items: Any, per_page: int = PAGE_SIZE) -> Page:
    """The page named by ``?page=`` (bad or out-of-range numbers give the nearest page)."""
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    """The current query string minus ``page``, so pagination links keep the filters."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def int_param(
    request: HttpRequest, name: str, default: int, *, low: int = 0, high: int = 10**6
) -> int:
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        return default
    return max(low, min(high, value))
