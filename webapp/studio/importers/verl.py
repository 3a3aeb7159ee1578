"""The Writing-RL authors' verl parquet: one row per training instruction.

Row layout (what their reward function reads, plus what verl itself needs)::

    data_source: str, prompt: [{"role": "user", "content": str}], ability: str,
    reward_model: {"style": "model",
                   "ground_truth": {"id": str, "prompt": str,
                                    "target": [reference, ...]   # ascending quality
                                    "criteria": str | null}},
    extra_info: {"index": int, ...}   # our export adds domain, split, writers, scores, ...

``target`` may also be a single string (one reference). Rows are numbered from 1 in problems.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from webapp.studio.importers.base import (
    FieldReader,
    ParsedDataset,
    ParsedInstruction,
    ParsedReference,
    type_name,
)
from webapp.studio.importers.limits import BadValue, check_value, loads

PARQUET_MAGIC = b"PAR1"


def is_parquet(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(4) == PARQUET_MAGIC


def _target(reader: FieldReader, ground_truth: dict[str, Any]) -> list[str]:
    name = "reward_model.ground_truth.target"
    target = ground_truth.get("target")
    if target is None:
        reader.fail(name, "is missing" if "target" not in ground_truth else "is null")
        return []
    if isinstance(target, str):
        target = [target]
    if not isinstance(target, list | tuple):
        reader.fail(name, f"must be a list of reference texts, got {type_name(target)}")
        return []
    if not target:
        reader.fail(name, "is an empty list; give at least one reference (weakest first)")
        return []
    texts: list[str] = []
    for index, text in enumerate(target):
        if not isinstance(text, str):
            reader.fail(f"{name}[{index}]", f"must be a string, got {type_name(text)}")
        elif not text.strip():
            reader.fail(f"{name}[{index}]", "is an empty reference")
        else:
            texts.append(text)
    return texts


def _writers_and_scores(
    reader: FieldReader, extra: dict[str, Any], count: int
) -> tuple[list[str], list[float | None]]:
    writers = extra.get("writers")
    scores = extra.get("scores")
    if not (isinstance(writers, list | tuple) and len(writers) == count):
        writers = [f"tier-{tier}" for tier in range(count)]
    if not (isinstance(scores, list | tuple) and len(scores) == count):
        scores = [None] * count
    parsed_scores = [reader.score(s, f"extra_info.scores[{i}]") for i, s in enumerate(scores)]
    return [str(w) for w in writers], parsed_scores


def _schema_depth(arrow_type: Any) -> int:
    """How deep a parquet column's values nest (a list of structs of strings: 3)."""
    children = [arrow_type.field(i).type for i in range(getattr(arrow_type, "num_fields", 0))]
    value_type = getattr(arrow_type, "value_type", None)
    if value_type is not None:
        children.append(value_type)
    return 1 + max((_schema_depth(child) for child in children), default=0)


def check_metadata(path: Path, parsed: ParsedDataset) -> bool:
    """Refuse, from the footer alone, a file whose pages would decompress to more than the
    byte limit, that has more rows than allowed, or that nests deeper than allowed. A small
    zstd file can hold hundreds of megabytes of text: the limit counts decompressed bytes."""
    import pyarrow.parquet as pq

    limits = parsed.limits
    try:
        parquet = pq.ParquetFile(path)
    except Exception as error:
        parsed.problem(None, "-", f"cannot be read as parquet: {error}")
        return False
    metadata = parquet.metadata
    if metadata.num_rows > limits.max_items:
        parsed.problem(
            None,
            "-",
            f"has {metadata.num_rows:,} rows; the limit is {limits.max_items:,} "
            "(WRITING_RL_MAX_IMPORT_ITEMS)",
        )
        return False
    decompressed = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        columns = sum(
            row_group.column(c).total_uncompressed_size for c in range(row_group.num_columns)
        )
        decompressed += max(row_group.total_byte_size, columns)
    if limits.max_bytes is not None and decompressed > limits.max_bytes:
        parsed.problem(
            None,
            "-",
            f"decompresses to {decompressed:,} bytes; the limit is {limits.max_bytes:,} "
            "(WRITING_RL_MAX_DATASET_BYTES counts decompressed bytes)",
        )
        return False
    schema = parquet.schema_arrow
    for index in range(len(schema)):
        column = schema.field(index)
        if _schema_depth(column.type) > limits.max_depth:
            parsed.problem(
                None,
                column.name,
                f"is nested more than {limits.max_depth} levels deep (WRITING_RL_MAX_JSON_DEPTH)",
            )
            return False
    return True


def parse_verl(path: Path, parsed: ParsedDataset, default_split: str) -> None:
    import pyarrow.parquet as pq

    if not check_metadata(path, parsed):
        return
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as error:
        parsed.problem(None, "-", f"cannot be read as parquet: {error}")
        return
    if not rows:
        parsed.problem(None, "-", "has no rows")
    for number, row in enumerate(rows, start=1):
        try:
            check_value(row, parsed.limits)
        except BadValue as error:
            parsed.problem(number, error.field, str(error))
            continue
        if parsed.full(number):
            return
        reader = FieldReader(row, number, parsed)
        reward_model = row.get("reward_model")
        if not isinstance(reward_model, dict):
            reader.fail("reward_model", f"must be an object, got {type_name(reward_model)}")
            continue
        ground_truth = reward_model.get("ground_truth")
        if not isinstance(ground_truth, dict):
            reader.fail(
                "reward_model.ground_truth", f"must be an object, got {type_name(ground_truth)}"
            )
            continue
        extra = row.get("extra_info") if isinstance(row.get("extra_info"), dict) else {}
        truth = FieldReader(ground_truth, number, parsed)
        prompt = truth.text("prompt", required=True, label="reward_model.ground_truth.prompt")
        raw_id = ground_truth.get("id")
        if raw_id is None:
            raw_id = extra.get("id", extra.get("index", number))
        external_id = str(raw_id).strip()
        if not external_id:
            truth.fail("reward_model.ground_truth.id", "is empty")
        criteria: Any = ground_truth.get("criteria")
        if criteria is not None and not isinstance(criteria, str):
            truth.fail(
                "reward_model.ground_truth.criteria", f"must be a string, got {type_name(criteria)}"
            )
        if isinstance(extra.get("criteria_json"), str):
            # Our export keeps structured criteria (a WritingBench checklist) here, exactly.
            try:
                criteria = loads(extra["criteria_json"])
                check_value(criteria, parsed.limits, "extra_info.criteria_json")
            except json.JSONDecodeError as error:
                truth.fail("extra_info.criteria_json", f"is not valid JSON: {error.msg}")
            except BadValue as error:
                truth.fail(error.field, str(error))
            except RecursionError:
                truth.fail("extra_info.criteria_json", "is nested too deeply")
            except ValueError as error:
                truth.fail("extra_info.criteria_json", f"is not valid JSON here: {error}")
        texts = _target(truth, ground_truth)
        writers, scores = _writers_and_scores(truth, extra, len(texts))
        required = FieldReader(extra, number, parsed).positive_int(
            "required_words", "extra_info.required_words"
        )
        split = FieldReader(extra, number, parsed).split("split", default_split)
        if truth.ok and reader.ok and prompt is not None and texts:
            parsed.instructions.append(
                ParsedInstruction(
                    external_id=external_id[:200],
                    prompt=prompt,
                    line=number,
                    criteria=criteria or None,
                    required_words=required,
                    domain=str(extra.get("domain") or "")[:200],
                    subdomain=str(extra.get("subdomain") or "")[:200],
                    split=split,
                    metadata={"data_source": row.get("data_source") or ""},
                    references=[
                        ParsedReference(writer=w, text=t, score=s)
                        for w, t, s in zip(writers, texts, scores, strict=True)
                    ],
                )
            )
