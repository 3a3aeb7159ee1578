"""Import of long-input (LongBench v2-style) benchmark files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from rl_engine.evaluation.longinput import LongInputItem
from webapp.evals.models import LongInputBenchmark, LongInputQuestion


class BenchmarkFileError(ValueError):
    """A benchmark file is invalid; the message names file, line and field."""


@transaction.atomic
def long_input_import(
    *, name: str, lines: Iterable[bytes | str], filename: str, created_by: Any = None
) -> LongInputBenchmark:
    """Import a LongBench v2-style JSONL file (one question per line: ``_id``/``item_id``,
    ``context``, ``question``, ``choice_A``..``choice_D`` or ``choices``, ``answer``,
    ``difficulty``, ``length``, optional ``domain``). All or nothing: the first bad line
    raises BenchmarkFileError naming file, line and field, and nothing is saved."""
    name = name.strip() or filename
    if LongInputBenchmark.objects.filter(name=name).exists():
        raise BenchmarkFileError(f"a benchmark named {name!r} exists already; choose another name")
    questions: list[LongInputItem] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", errors="strict") if isinstance(raw, bytes) else raw
        if not text.strip():
            continue
        where = f"{filename}:{number}"
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            raise BenchmarkFileError(f"{where}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise BenchmarkFileError(f"{where}: expected a JSON object")
        try:
            item = LongInputItem.from_dict(row, where)
        except ValueError as error:
            raise BenchmarkFileError(str(error)) from None
        if item.item_id in seen:
            raise BenchmarkFileError(
                f"{where}: field 'item_id' {item.item_id!r} repeats line {seen[item.item_id]}"
            )
        seen[item.item_id] = number
        questions.append(item)
    if not questions:
        raise BenchmarkFileError(f"{filename}: no question found (one JSON object per line)")
    benchmark = LongInputBenchmark.objects.create(
        name=name[:200],
        source_filename=filename[:500],
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    LongInputQuestion.objects.bulk_create(
        [
            LongInputQuestion(
                benchmark=benchmark, external_id=q.item_id[:200], context=q.context,
                question=q.question, choices=list(q.choices), answer=q.answer,
                difficulty=q.difficulty, length=q.length, domain=q.domain[:200],
            )
            for q in questions
        ],
        batch_size=200,
    )  # fmt: skip
    return benchmark
