"""Write a dataset back as the Writing-RL authors' verl parquet (see importers/verl.py).

The parquet is what verl's data loader and the authors' reward function read: a chat
``prompt``, ``reward_model.ground_truth`` with ``prompt``, ``target`` (references, weakest
first) and ``criteria`` as text. ``extra_info`` keeps what their format has no place for
(writers, scores, domain, split, required words, structured criteria), so importing an
export gives the same dataset back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import Prefetch

from webapp.studio.importers import criteria_text
from webapp.studio.models import Dataset, Instruction, Reference

DATA_SOURCE = "writing_rl_studio"

SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("ability", pa.string()),
        (
            "reward_model",
            pa.struct(
                [
                    ("style", pa.string()),
                    (
                        "ground_truth",
                        pa.struct(
                            [
                                ("id", pa.string()),
                                ("prompt", pa.string()),
                                ("target", pa.list_(pa.string())),
                                ("criteria", pa.string()),
                            ]
                        ),
                    ),
                ]
            ),
        ),
        (
            "extra_info",
            pa.struct(
                [
                    ("index", pa.int64()),
                    ("id", pa.string()),
                    ("split", pa.string()),
                    ("domain", pa.string()),
                    ("subdomain", pa.string()),
                    ("required_words", pa.int64()),
                    ("writers", pa.list_(pa.string())),
                    ("scores", pa.list_(pa.float64())),
                    ("criteria_json", pa.string()),
                ]
            ),
        ),
    ]
)


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    rows: int
    skipped_without_references: int


def _ordered(references: list[Reference]) -> list[Reference]:
    # Tiered references in tier order; untiered ones (not ordered yet) after them by score.
    return sorted(
        references,
        key=lambda r: (r.tier is None, r.tier or 0, r.score if r.score is not None else 0, r.id),
    )


def export_dataset(
    *, dataset: Dataset, path: str | os.PathLike[str], split: str | None = None
) -> ExportSummary:
    """Write ``dataset`` (optionally one split) to ``path`` as a verl parquet.

    Instructions without references are left out (verl's reward needs a target) and counted
    in the summary.
    """
    instructions = (
        Instruction.objects.filter(dataset=dataset)
        .order_by("id")
        .prefetch_related(Prefetch("references", queryset=Reference.objects.order_by("id")))
    )
    if split:
        instructions = instructions.filter(split=split)
    rows = []
    skipped = 0
    for index, instruction in enumerate(instructions.iterator(chunk_size=500)):
        references = _ordered(list(instruction.references.all()))
        if not references:
            skipped += 1
            continue
        criteria = instruction.criteria
        rows.append(
            {
                "data_source": DATA_SOURCE,
                "prompt": [{"role": "user", "content": instruction.prompt}],
                "ability": "writing",
                "reward_model": {
                    "style": "model",
                    "ground_truth": {
                        "id": instruction.external_id,
                        "prompt": instruction.prompt,
                        "target": [reference.text for reference in references],
                        "criteria": criteria_text(criteria),
                    },
                },
                "extra_info": {
                    "index": index,
                    "id": instruction.external_id,
                    "split": instruction.split,
                    "domain": instruction.domain,
                    "subdomain": instruction.subdomain,
                    "required_words": instruction.required_words,
                    "writers": [reference.writer for reference in references],
                    "scores": [reference.score for reference in references],
                    "criteria_json": None if criteria is None else json.dumps(criteria),
                },
            }
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), target)
    return ExportSummary(path=target, rows=len(rows), skipped_without_references=skipped)
