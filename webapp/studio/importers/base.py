"""What every importer produces: parsed instructions with their references, or problems.

Importers never touch the database. They read a whole file, collect *every* problem
(line or row, field, message) instead of stopping at the first, and hand back either a clean
:class:`ParsedDataset` or the problems; the service writes the dataset in one transaction
only when there are none.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from webapp.studio.importers.limits import (
    MAX_PROBLEMS_KEPT,
    MAX_REQUIRED_WORDS,
    ImportLimits,
)

SPLITS = ("train", "eval", "test")


class ImportProblem(NamedTuple):
    """One thing wrong with an input file: where (line or row, 1-based), which field, what."""

    line: int | None
    field: str
    message: str


@dataclass
class ParsedReference:
    writer: str
    text: str
    score: float | None = None


@dataclass
class ParsedInstruction:
    """One instruction as read from a file; ``references`` are in ascending quality."""

    external_id: str
    prompt: str
    line: int
    criteria: Any = None
    required_words: int | None = None
    domain: str = ""
    subdomain: str = ""
    split: str = "train"
    metadata: dict[str, Any] = field(default_factory=dict)
    references: list[ParsedReference] = field(default_factory=list)


@dataclass
class ParsedDataset:
    """The outcome of parsing one file. ``unit`` is "line" (JSONL) or "row" (parquet).

    ``problems`` keeps the first :data:`MAX_PROBLEMS_KEPT`; ``problem_count`` counts them all
    (a file of a million bad lines must not become a million-row error page).
    """

    format: str
    unit: str = "line"
    instructions: list[ParsedInstruction] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    problem_count: int = 0
    limits: ImportLimits = field(default_factory=ImportLimits)

    def problem(self, line: int | None, field_name: str, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(ImportProblem(line, field_name, message))

    def full(self, line: int) -> bool:
        """True (after reporting it once) when the file holds more items than allowed."""
        if len(self.instructions) < self.limits.max_items:
            return False
        self.problem(
            line,
            "-",
            f"the file has more than {self.limits.max_items:,} instructions "
            "(WRITING_RL_MAX_IMPORT_ITEMS); split it",
        )
        return True

    def check_unique_ids(self) -> None:
        """Report every id used twice, naming the line of its first use."""
        first_seen: dict[str, int] = {}
        for instruction in self.instructions:
            if instruction.external_id in first_seen:
                self.problem(
                    instruction.line,
                    "id",
                    f"duplicate id {instruction.external_id!r} (first used on "
                    f"{self.unit} {first_seen[instruction.external_id]})",
                )
            else:
                first_seen[instruction.external_id] = instruction.line


def type_name(value: object) -> str:
    """A JSON-ish name for a value's type, for messages ("a list", "null")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class FieldReader:
    """Typed access to one record's fields that records a problem instead of raising.

    Each getter returns ``None`` (or the default) when the value is missing or wrong, after
    recording a problem, so a parser can keep going and report everything at once.
    """

    def __init__(self, record: dict[str, Any], line: int, parsed: ParsedDataset) -> None:
        self.record = record
        self.line = line
        self.parsed = parsed
        self.ok = True

    def fail(self, field_name: str, message: str) -> None:
        self.ok = False
        self.parsed.problem(self.line, field_name, message)

    def text(self, key: str, *, required: bool, label: str | None = None) -> str | None:
        name = label or key
        value = self.record.get(key)
        if value is None:
            if required:
                self.fail(name, "is missing" if key not in self.record else "is null")
            return None
        if not isinstance(value, str):
            self.fail(name, f"must be a string, got {type_name(value)}")
            return None
        if required and not value.strip():
            self.fail(name, "is empty")
            return None
        return value

    def identifier(self, key: str, label: str | None = None) -> str | None:
        name = label or key
        value = self.record.get(key)
        if value is None:
            self.fail(name, "is missing" if key not in self.record else "is null")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.fail(name, f"must be a string or an integer, got {type_name(value)}")
            return None
        identifier = str(value).strip()
        if not identifier:
            self.fail(name, "is empty")
            return None
        if len(identifier) > 200:
            self.fail(name, f"is {len(identifier)} characters long; the limit is 200")
            return None
        return identifier

    def positive_int(self, key: str, label: str | None = None) -> int | None:
        name = label or key
        value = self.record.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be a positive integer, got {type_name(value)}")
            return None
        if value <= 0:
            self.fail(name, f"must be a positive integer, got {value}")
            return None
        if value > MAX_REQUIRED_WORDS:
            self.fail(name, f"must be at most {MAX_REQUIRED_WORDS:,}, got {value:.3g}")
            return None
        return value

    def score(self, value: object, name: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(name, f"must be a number or null, got {type_name(value)}")
            return None
        if not math.isfinite(value):
            self.fail(name, f"must be a finite number, got {value}")
            return None
        return float(value)

    def split(self, key: str, default: str) -> str:
        value = self.record.get(key)
        if value is None:
            return default
        if value not in SPLITS:
            self.fail(key, f"must be one of {', '.join(SPLITS)}, got {value!r}")
            return default
        return str(value)


def criteria_text(criteria: Any) -> str | None:
    """Criteria as the text a judge reads: a string as is; a WritingBench checklist (a list of
    ``{name, criteria_description, ...}``) as one ``- name: description`` line per criterion;
    anything else as compact JSON. None or empty gives None."""
    if criteria is None or criteria == "" or criteria == []:
        return None
    if isinstance(criteria, str):
        return criteria
    if isinstance(criteria, list):
        lines = []
        for entry in criteria:
            if isinstance(entry, dict) and ("name" in entry or "criteria_description" in entry):
                name = str(entry.get("name", "")).strip()
                description = str(entry.get("criteria_description", "")).strip()
                lines.append(f"- {name}: {description}" if name else f"- {description}")
            elif isinstance(entry, str):
                lines.append(f"- {entry}")
            else:
                lines.append(f"- {json.dumps(entry, ensure_ascii=False)}")
        return "\n".join(lines)
    return json.dumps(criteria, ensure_ascii=False)
