"""Importing datasets: all or nothing, with every problem named."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from webapp.studio.importers import (
    FORMATS,
    ImportLimits,
    ImportProblem,
    ParsedDataset,
    parse_dataset,
)
from webapp.studio.models import AuditLog, Dataset, Instruction, Reference


class DatasetImportError(Exception):
    """A file could not be imported; ``problems`` lists (line or row, field, message).

    Nothing was written. ``str(error)`` is a readable report naming the file.
    """

    def __init__(
        self,
        filename: str,
        problems: Iterable[ImportProblem],
        unit: str = "line",
        total: int | None = None,
    ):
        self.filename = filename
        self.problems = list(problems)
        self.unit = unit
        # How many problems the file has; ``problems`` may hold only the first of them.
        self.total = max(total or 0, len(self.problems))
        super().__init__(self.report())

    def lines(self, limit: int | None = None) -> list[str]:
        shown = self.problems if limit is None else self.problems[:limit]
        out = []
        for problem in shown:
            where = (
                f"{self.filename}, {self.unit} {problem.line}" if problem.line else self.filename
            )
            out.append(f"{where}, field {problem.field}: {problem.message}")
        if self.total > len(shown):
            out.append(f"... and {self.total - len(shown):,} more problem(s)")
        return out

    @property
    def more(self) -> int:
        """Problems counted but not listed."""
        return self.total - len(self.problems)

    def report(self, limit: int | None = 50) -> str:
        head = f"{self.filename}: {self.total:,} problem(s); nothing was imported"
        return "\n".join([head, *self.lines(limit)])


def _spool_upload(uploaded_file: Any, max_bytes: int) -> Path:
    """Copy an upload to a temporary file, refusing it as soon as it passes ``max_bytes``."""
    handle, name = tempfile.mkstemp(prefix="dataset-", suffix=Path(uploaded_file.name).suffix)
    written = 0
    with os.fdopen(handle, "wb") as stream:
        for chunk in uploaded_file.chunks():
            written += len(chunk)
            if written > max_bytes:
                stream.close()
                os.unlink(name)
                raise DatasetImportError(
                    uploaded_file.name,
                    [
                        ImportProblem(
                            None,
                            "-",
                            f"is larger than the limit of {max_bytes:,} bytes "
                            "(WRITING_RL_MAX_DATASET_BYTES)",
                        )
                    ],
                )
            stream.write(chunk)
    return Path(name)


def dataset_parse(
    *,
    path: str | os.PathLike[str],
    fmt: str = "auto",
    filename: str | None = None,
    split: str = "train",
) -> ParsedDataset:
    """Parse a file without writing anything; raises DatasetImportError on any problem.
    Records that name no split of their own land in ``split``."""
    limits = ImportLimits.from_settings(max_bytes=settings.WRITING_RL_MAX_DATASET_BYTES)
    parsed = parse_dataset(path, fmt, limits=limits, default_split=split)
    if parsed.problems:
        raise DatasetImportError(
            filename or Path(path).name, parsed.problems, parsed.unit, parsed.problem_count
        )
    return parsed


def split_by_fraction(instructions: Sequence[Any], eval_fraction: float, seed: int) -> int:
    """Send ``round(eval_fraction * n)`` of ``instructions`` (at least one, at most n - 1 when
    n > 1), drawn with ``seed``, to ``eval`` and the rest to ``train``. The draw depends only
    on the seed and the instructions' ids, not on their order in the file. Returns how many
    went to eval."""
    ordered = sorted(instructions, key=lambda item: str(item.external_id))
    count = len(ordered)
    chosen = round(eval_fraction * count)
    if count > 1:
        chosen = min(max(chosen, 1), count - 1)
    picked = set(random.Random(seed).sample(range(count), chosen))
    for index, item in enumerate(ordered):
        item.split = "eval" if index in picked else "train"
    return chosen


@transaction.atomic
def dataset_import(
    *,
    name: str,
    path: str | os.PathLike[str] | None = None,
    uploaded_file: Any = None,
    fmt: str = "auto",
    user: Any = None,
    description: str = "",
    split: str = "train",
    eval_fraction: float | None = None,
    seed: int = 0,
) -> Dataset:
    """Create a dataset named ``name`` from a file on disk (``path``) or an upload.

    Every instruction and reference is written in one transaction, only if the whole file is
    clean; otherwise :class:`DatasetImportError` lists every problem and nothing changes.
    References keep their order from the file as tiers (0 = weakest). Records that name no
    split of their own land in ``split``; ``eval_fraction`` instead sends that share of the
    instructions (rounded, drawn with ``seed``) to ``eval`` and the rest to ``train``.
    """
    if (path is None) == (uploaded_file is None):
        raise ValueError("give exactly one of path and uploaded_file")
    filename = Path(path).name if path is not None else uploaded_file.name
    early: list[ImportProblem] = []
    name = (name or "").strip()
    if not name:
        early.append(ImportProblem(None, "name", "is empty; give the dataset a name"))
    elif "\x00" in name or len(name) > 200:
        early.append(ImportProblem(None, "name", "must be at most 200 characters, without NUL"))
    elif Dataset.objects.filter(name=name).exists():
        early.append(ImportProblem(None, "name", f"a dataset named {name!r} exists already"))
    if fmt not in FORMATS:
        early.append(ImportProblem(None, "format", f"must be one of {', '.join(FORMATS)}"))
    if split not in Instruction.Split.values:
        early.append(
            ImportProblem(None, "split", f"must be one of {', '.join(Instruction.Split.values)}")
        )
    if eval_fraction is not None and not 0.0 < eval_fraction < 1.0:
        early.append(
            ImportProblem(None, "eval_fraction", f"must be between 0 and 1, got {eval_fraction}")
        )
    if early:
        raise DatasetImportError(filename, early)

    spooled = None
    if uploaded_file is not None:
        spooled = _spool_upload(uploaded_file, settings.WRITING_RL_MAX_DATASET_BYTES)
    try:
        parsed = dataset_parse(path=spooled or path, fmt=fmt, filename=filename, split=split)
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
    if eval_fraction is not None:
        split_by_fraction(parsed.instructions, eval_fraction, seed)

    dataset = Dataset.objects.create(
        name=name,
        description=description,
        source_format=parsed.format,
        source_filename=filename[:500],
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )
    instructions = Instruction.objects.bulk_create(
        [
            Instruction(
                dataset=dataset,
                external_id=item.external_id,
                prompt=item.prompt,
                criteria=item.criteria,
                required_words=item.required_words,
                domain=item.domain,
                subdomain=item.subdomain,
                split=item.split,
                metadata=item.metadata,
            )
            for item in parsed.instructions
        ],
        batch_size=500,
    )
    Reference.objects.bulk_create(
        [
            Reference(
                instruction=instruction,
                writer=reference.writer[:200],
                text=reference.text,
                score=reference.score,
                tier=tier,
                source=Reference.Source.IMPORTED,
            )
            for instruction, item in zip(instructions, parsed.instructions, strict=True)
            for tier, reference in enumerate(item.references)
        ],
        batch_size=500,
    )
    AuditLog.objects.create(
        actor=dataset.created_by,
        action="dataset_import",
        details={
            "dataset": dataset.pk,
            "file": filename,
            "format": parsed.format,
            "instructions": len(instructions),
        },
    )
    return dataset
