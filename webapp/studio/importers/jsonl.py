"""JSON Lines importers: our own format, WritingBench items and LongBench-Write items.

All three read the file as bytes and decode line by line, so a bad byte is reported with its
line number instead of failing the whole file with an offset. Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rl_engine.text import required_length
from webapp.studio.importers.base import (
    FieldReader,
    ParsedDataset,
    ParsedInstruction,
    ParsedReference,
    type_name,
)
from webapp.studio.importers.limits import MAX_REQUIRED_WORDS, BadValue, check_value, loads

# Our format's fields; anything else on a line is reported, so a typo ("refrences") is caught.
JSONL_FIELDS = (
    "id", "prompt", "criteria", "required_words", "domain", "subdomain", "split",
    "references", "metadata",
)  # fmt: skip
REFERENCE_FIELDS = ("writer", "text", "score")


def read_records(path: Path, parsed: ParsedDataset) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line that is a JSON object; other lines are
    recorded as problems."""
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                parsed.problem(
                    number,
                    "-",
                    f"is not valid UTF-8 (byte {error.start + 1} of the line is "
                    f"0x{raw[error.start]:02x}); save the file as UTF-8",
                )
                continue
            if number == 1:
                line = line.removeprefix("\ufeff")
            stripped = line.lstrip()
            if not stripped:
                continue
            if stripped[0] != "{":
                # Cheap, and common in a file that is not JSON Lines at all.
                parsed.problem(number, "-", "is not a JSON object (a line must start with {)")
                continue
            try:
                record = loads(line)
            except json.JSONDecodeError as error:
                parsed.problem(
                    number, "-", f"is not valid JSON: {error.msg} (column {error.colno})"
                )
                continue
            except RecursionError:
                parsed.problem(
                    number,
                    "-",
                    f"is nested more than {parsed.limits.max_depth} levels deep "
                    "(WRITING_RL_MAX_JSON_DEPTH)",
                )
                continue
            except ValueError as error:
                # A number too long to convert ("Exceeds the limit (4300 digits)"), NaN.
                parsed.problem(number, "-", f"is not valid JSON here: {error}")
                continue
            if not isinstance(record, dict):
                parsed.problem(number, "-", f"must be a JSON object, got {type_name(record)}")
                continue
            try:
                check_value(record, parsed.limits)
            except BadValue as error:
                parsed.problem(number, error.field, str(error))
                continue
            if parsed.full(number):
                return
            yield number, record


def first_record(path: Path) -> dict[str, Any] | None:
    """The first line that parses as a JSON object, for format detection."""
    probe = ParsedDataset(format="probe")
    for _, record in read_records(path, probe):
        return record
    return None


def _criteria(reader: FieldReader, key: str) -> Any:
    value = reader.record.get(key)
    if value is None or isinstance(value, str):
        return value or None
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if not isinstance(entry, str | dict):
                reader.fail(
                    f"{key}[{index}]", f"must be a string or an object, got {type_name(entry)}"
                )
                return None
        return value or None
    reader.fail(key, f"must be a string, a list or null, got {type_name(value)}")
    return None


def _references(reader: FieldReader) -> list[ParsedReference]:
    value = reader.record.get("references")
    if value is None:
        return []
    if not isinstance(value, list):
        reader.fail("references", f"must be a list of objects, got {type_name(value)}")
        return []
    references: list[ParsedReference] = []
    for index, entry in enumerate(value):
        where = f"references[{index}]"
        if not isinstance(entry, dict):
            reader.fail(where, f"must be an object with writer and text, got {type_name(entry)}")
            continue
        unknown = sorted(set(entry) - set(REFERENCE_FIELDS))
        if unknown:
            reader.fail(where, f"unknown field(s) {', '.join(unknown)}; known: writer, text, score")
        sub = FieldReader(entry, reader.line, reader.parsed)
        writer = sub.text("writer", required=True, label=f"{where}.writer")
        text = sub.text("text", required=True, label=f"{where}.text")
        score = sub.score(entry.get("score"), f"{where}.score")
        if not sub.ok:
            reader.ok = False
            continue
        assert writer is not None and text is not None
        references.append(ParsedReference(writer=writer.strip(), text=text, score=score))
    writers = [reference.writer for reference in references]
    for writer in sorted({w for w in writers if writers.count(w) > 1}):
        reader.fail("references", f"writer {writer!r} appears more than once")
    # With a score on every reference, the scores decide the tiers (stable for equal scores);
    # otherwise the file's order is the ascending quality order.
    if references and all(reference.score is not None for reference in references):
        references.sort(key=lambda reference: reference.score or 0.0)
    return references


def parse_jsonl(path: Path, parsed: ParsedDataset, default_split: str) -> None:
    """Our format: see docs/dataset-format.md."""
    for number, record in read_records(path, parsed):
        reader = FieldReader(record, number, parsed)
        unknown = sorted(set(record) - set(JSONL_FIELDS))
        if unknown:
            reader.fail(
                unknown[0] if len(unknown) == 1 else ",".join(unknown),
                f"unknown field(s); known: {', '.join(JSONL_FIELDS)}",
            )
        external_id = reader.identifier("id")
        prompt = reader.text("prompt", required=True)
        criteria = _criteria(reader, "criteria")
        required_words = reader.positive_int("required_words")
        domain = reader.text("domain", required=False) or ""
        subdomain = reader.text("subdomain", required=False) or ""
        split = reader.split("split", default_split)
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            reader.fail("metadata", f"must be an object, got {type_name(metadata)}")
        references = _references(reader)
        if reader.ok and external_id is not None and prompt is not None:
            parsed.instructions.append(
                ParsedInstruction(
                    external_id=external_id,
                    prompt=prompt,
                    line=number,
                    criteria=criteria,
                    required_words=required_words,
                    domain=domain[:200],
                    subdomain=subdomain[:200],
                    split=split,
                    metadata=metadata,
                    references=references,
                )
            )


def parse_writingbench(path: Path, parsed: ParsedDataset, default_split: str) -> None:
    """WritingBench items: ``index, domain1, domain2, query, checklist``.

    The checklist becomes the criteria; the required words come from the query when it states
    a length ("2000-2500 words" gives 2250).
    """
    for number, record in read_records(path, parsed):
        reader = FieldReader(record, number, parsed)
        external_id = reader.identifier("index")
        query = reader.text("query", required=True)
        domain = reader.text("domain1", required=False) or ""
        subdomain = reader.text("domain2", required=False) or ""
        checklist = record.get("checklist")
        if checklist is None:
            reader.fail("checklist", "is missing" if "checklist" not in record else "is null")
        elif not isinstance(checklist, list) or not checklist:
            reader.fail(
                "checklist", f"must be a non-empty list of criteria, got {type_name(checklist)}"
            )
        else:
            for index, criterion in enumerate(checklist):
                if not isinstance(criterion, dict):
                    reader.fail(
                        f"checklist[{index}]", f"must be an object, got {type_name(criterion)}"
                    )
                elif not isinstance(criterion.get("criteria_description"), str):
                    reader.fail(
                        f"checklist[{index}].criteria_description", "is missing or not a string"
                    )
        extra = {
            k: v
            for k, v in record.items()
            if k not in {"index", "domain1", "domain2", "query", "checklist"}
        }
        required_words = required_length(query) if query is not None else None
        if required_words is not None and required_words > MAX_REQUIRED_WORDS:
            reader.fail(
                "query",
                f"asks for {required_words:.3g} words; the limit is {MAX_REQUIRED_WORDS:,}",
            )
        if reader.ok and external_id is not None and query is not None:
            parsed.instructions.append(
                ParsedInstruction(
                    external_id=external_id,
                    prompt=query,
                    line=number,
                    criteria=checklist,
                    required_words=required_words,
                    domain=domain[:200],
                    subdomain=subdomain[:200],
                    split=default_split,
                    metadata={"source": "writingbench", **extra},
                )
            )


def parse_longbench_write(path: Path, parsed: ParsedDataset, default_split: str) -> None:
    """LongBench-Write items: ``prompt, type, length``; length is the required words. Items
    have no id, so the id is the line number."""
    for number, record in read_records(path, parsed):
        reader = FieldReader(record, number, parsed)
        prompt = reader.text("prompt", required=True)
        kind = reader.text("type", required=False) or ""
        if record.get("length") is None:
            reader.fail("length", "is missing" if "length" not in record else "is null")
            length = None
        else:
            length = reader.positive_int("length")
        external_id = (
            str(record["id"]) if isinstance(record.get("id"), str | int) else f"line-{number}"
        )
        extra = {k: v for k, v in record.items() if k not in {"prompt", "type", "length", "id"}}
        if reader.ok and prompt is not None:
            parsed.instructions.append(
                ParsedInstruction(
                    external_id=external_id,
                    prompt=prompt,
                    line=number,
                    required_words=length,
                    domain=kind[:200],
                    split=default_split,
                    metadata={"source": "longbench_write", **extra},
                )
            )


JSONL_PARSERS: dict[str, Callable[[Path, ParsedDataset, str], None]] = {
    "jsonl": parse_jsonl,
    "writingbench": parse_writingbench,
    "longbench_write": parse_longbench_write,
}


def detect_jsonl_format(record: dict[str, Any]) -> str | None:
    """Which JSONL flavour a first record looks like, or None."""
    keys = set(record)
    if {"query", "checklist"} <= keys:
        return "writingbench"
    if "id" in keys and "prompt" in keys:
        return "jsonl"
    if {"prompt", "length"} <= keys:
        return "longbench_write"
    return None
