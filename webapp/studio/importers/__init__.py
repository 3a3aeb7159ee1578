"""Dataset importers: read a file into instructions and references, or list what is wrong.

Formats (``FORMATS``): ``jsonl`` (ours, docs/dataset-format.md), ``writingbench``,
``longbench_write`` and ``verl`` (the Writing-RL authors' parquet). ``parse_dataset`` checks
the size, detects the format when asked to (``auto``) and returns a :class:`ParsedDataset`
whose ``problems`` list everything wrong (line or row, field, message). Nothing here writes to
the database: :func:`webapp.studio.services.datasets.dataset_import` does, all or nothing.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from webapp.studio.importers.base import (
    ImportProblem,
    ParsedDataset,
    ParsedInstruction,
    ParsedReference,
    criteria_text,
)
from webapp.studio.importers.jsonl import (
    JSONL_PARSERS,
    detect_jsonl_format,
    first_record,
    read_records,
)
from webapp.studio.importers.limits import ImportLimits
from webapp.studio.importers.verl import is_parquet, parse_verl

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "ImportLimits",
    "ImportProblem",
    "ParsedDataset",
    "ParsedInstruction",
    "ParsedReference",
    "criteria_text",
    "detect_format",
    "parse_dataset",
]

FORMATS = ("auto", "jsonl", "writingbench", "longbench_write", "verl")
FORMAT_NAMES = {
    "jsonl": "our JSONL",
    "writingbench": "WritingBench",
    "longbench_write": "LongBench-Write",
    "verl": "the authors' verl parquet",
}


def detect_format(path: Path) -> str | None:
    """``verl`` for a parquet file, else the JSONL flavour of its first record, else None."""
    if is_parquet(path):
        return "verl"
    record = first_record(path)
    return detect_jsonl_format(record) if record is not None else None


def parse_dataset(
    path: str | os.PathLike[str],
    fmt: str = "auto",
    *,
    max_bytes: int | None = None,
    default_split: str = "train",
    limits: ImportLimits | None = None,
) -> ParsedDataset:
    """Parse ``path`` in format ``fmt`` and collect every problem.

    A file larger than ``max_bytes`` is not read at all; a parquet file whose pages would
    decompress to more than that is not decompressed. ``limits`` bounds field sizes, nesting
    and the number of instructions (defaults: :class:`ImportLimits`). Duplicate ids are
    reported on the line of their second use.
    """
    if limits is None:
        limits = ImportLimits(max_bytes=max_bytes)
    elif max_bytes is not None:
        limits = dataclasses.replace(limits, max_bytes=max_bytes)
    parsed = _parse(Path(path), fmt, limits, default_split)
    parsed.limits = limits
    return parsed


def _parse(source: Path, fmt: str, limits: ImportLimits, default_split: str) -> ParsedDataset:
    max_bytes = limits.max_bytes
    if fmt not in FORMATS:
        parsed = ParsedDataset(format=fmt, limits=limits)
        parsed.problem(
            None, "format", f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
        )
        return parsed
    if not source.is_file():
        parsed = ParsedDataset(format=fmt, limits=limits)
        parsed.problem(None, "-", "does not exist or is not a file")
        return parsed
    size = source.stat().st_size
    if max_bytes is not None and size > max_bytes:
        parsed = ParsedDataset(format=fmt, limits=limits)
        parsed.problem(
            None,
            "-",
            f"is {size:,} bytes; the limit is {max_bytes:,} (WRITING_RL_MAX_DATASET_BYTES)",
        )
        return parsed
    if size == 0:
        parsed = ParsedDataset(format=fmt, limits=limits)
        parsed.problem(None, "-", "is empty")
        return parsed
    if fmt == "auto":
        detected = detect_format(source)
        if detected is None:
            parsed = ParsedDataset(format=fmt, limits=limits)
            if first_record(source) is None:
                # No line is a JSON object: list the encoding and JSON errors line by line.
                for _ in read_records(source, parsed):
                    pass
            parsed.problem(
                None,
                "format",
                "cannot tell the format (expected our JSONL with id and prompt, WritingBench "
                "with query and checklist, LongBench-Write with prompt and length, or a verl "
                "parquet); pass the format explicitly",
            )
            return parsed
        fmt = detected
    if fmt == "verl":
        parsed = ParsedDataset(format="verl", unit="row", limits=limits)
        parse_verl(source, parsed, default_split)
    else:
        parsed = ParsedDataset(format=fmt, limits=limits)
        JSONL_PARSERS[fmt](source, parsed, default_split)
    if not parsed.instructions and not parsed.problems:
        parsed.problem(None, "-", "contains no instructions")
    parsed.check_unique_ids()
    if parsed.problems:
        _hint_format(source, fmt, parsed)
    return parsed


def _hint_format(source: Path, fmt: str, parsed: ParsedDataset) -> None:
    """When a file fails in the format asked for but looks like another known format, say so
    first (a wrong format otherwise shows as a problem on every line)."""
    detected = detect_format(source)
    if detected is None or detected == fmt:
        return
    parsed.problems.insert(
        0,
        ImportProblem(
            None,
            "format",
            f"this looks like {FORMAT_NAMES.get(detected, detected)}; try --format {detected} "
            f"(or choose {FORMAT_NAMES.get(detected, detected)} in the upload form)",
        ),
    )
    parsed.problem_count += 1
