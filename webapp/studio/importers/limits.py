"""Bounds on what an import may make the server hold, and checks of one JSON value.

A file is refused (with a problem naming its line and field) when a value is nested deeper
than ``max_depth``, a string is longer than ``max_chars`` or holds a NUL character (PostgreSQL
text cannot), a list or object has more than ``max_items`` entries, or a number is not finite.
The limits come from the settings (``WRITING_RL_MAX_*``), read once per import.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# The problem list keeps this many problems; the rest are only counted.
MAX_PROBLEMS_KEPT = 100
# No instruction asks for more words than this (a book is ~100k words).
MAX_REQUIRED_WORDS = 1_000_000
# Containers (list, object) in one record beyond which the record is refused.
MAX_CONTAINER_ITEMS = 10_000


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int | None = None
    max_chars: int = 2_000_000
    max_depth: int = 20
    max_items: int = 200_000

    @classmethod
    def from_settings(cls, max_bytes: int | None = None) -> ImportLimits:
        from django.conf import settings

        return cls(
            max_bytes=max_bytes,
            max_chars=int(getattr(settings, "WRITING_RL_MAX_FIELD_CHARS", cls.max_chars)),
            max_depth=int(getattr(settings, "WRITING_RL_MAX_JSON_DEPTH", cls.max_depth)),
            max_items=int(getattr(settings, "WRITING_RL_MAX_IMPORT_ITEMS", cls.max_items)),
        )


class BadValue(ValueError):
    """A value outside the limits; ``field`` is its path in the record (``metadata.a[3]``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field or "-"


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows; use null or a finite number")


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity (PostgreSQL's JSON has neither).

    Raises ValueError (JSONDecodeError included) for bad JSON, a number too long to convert,
    and RecursionError for absurd nesting; callers report all three as a problem of the line.
    """
    return _DECODER.decode(text)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_value(value: Any, limits: ImportLimits, path: str = "") -> None:
    """Raise :class:`BadValue` naming the first part of ``value`` outside ``limits``.

    Iterative (a deep value cannot exhaust the stack) and linear in the value's size.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_chars:
                raise BadValue(
                    where,
                    f"is {len(item):,} characters long; the limit is {limits.max_chars:,} "
                    "(WRITING_RL_MAX_FIELD_CHARS)",
                )
            if "\x00" in item:
                raise BadValue(where, "contains a NUL character (\\u0000); remove it")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise BadValue(where, f"must be a finite number, got {item}")
        elif isinstance(item, dict | list | tuple):
            if depth >= limits.max_depth:
                raise BadValue(
                    where,
                    f"is nested more than {limits.max_depth} levels deep "
                    "(WRITING_RL_MAX_JSON_DEPTH)",
                )
            if len(item) > MAX_CONTAINER_ITEMS:
                raise BadValue(
                    where, f"has {len(item):,} entries; the limit is {MAX_CONTAINER_ITEMS:,}"
                )
            if isinstance(item, dict):
                for key, child in item.items():
                    child_path = _join(where, str(key))
                    if isinstance(key, str) and "\x00" in key:
                        raise BadValue(child_path, "has a NUL character in its name")
                    stack.append((child, child_path, depth + 1))
            else:
                for index, child in enumerate(item):
                    stack.append((child, _join(where, index), depth + 1))
