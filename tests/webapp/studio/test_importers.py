"""Importers: every format, every error kind, all or nothing; the verl export round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from webapp.studio.exporters import export_dataset
from webapp.studio.importers import parse_dataset
from webapp.studio.models import Dataset, Instruction, Reference
from webapp.studio.services.datasets import DatasetImportError, dataset_import

pytestmark = pytest.mark.django_db


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records)
        + "\n",
        encoding="utf-8",
    )
    return path


OURS = [
    {
        "id": "sea-1",
        "prompt": "Write about the sea in about 300 words.",
        "criteria": "Vivid imagery.",
        "required_words": 300,
        "domain": "fiction",
        "split": "train",
        "references": [
            {"writer": "strong", "text": "The sea, silver at dawn...", "score": 8.5},
            {"writer": "weak", "text": "Sea is big.", "score": 2},
            {"writer": "middle", "text": "The sea was calm and grey.", "score": 5},
        ],
    },
    {"id": 2, "prompt": "Write a haiku about rain.", "split": "eval"},
    {
        "id": "letter",
        "prompt": "A letter to a friend.",
        "criteria": [{"name": "Warmth", "criteria_description": "Sounds like a friend."}],
        "references": [
            {"writer": "a", "text": "Dear Sam, short."},
            {"writer": "b", "text": "Dear Sam, a longer and kinder letter."},
        ],
    },
]


def problems_of(path: Path, fmt: str = "auto") -> list[tuple[int | None, str]]:
    return [(p.line, p.field) for p in parse_dataset(path, fmt).problems]


def test_it_imports_our_jsonl_with_tiers_by_score_or_file_order(tmp_path: Path) -> None:
    dataset = dataset_import(name="ours", path=write_jsonl(tmp_path / "d.jsonl", OURS))
    assert dataset.source_format == "jsonl"
    sea = Instruction.objects.get(dataset=dataset, external_id="sea-1")
    assert (sea.required_words, sea.domain, sea.criteria, sea.split) == (
        300,
        "fiction",
        "Vivid imagery.",
        "train",
    )
    assert list(sea.references.order_by("tier").values_list("writer", "tier")) == [
        ("weak", 0), ("middle", 1), ("strong", 2)
    ]  # fmt: skip
    letter = Instruction.objects.get(dataset=dataset, external_id="letter")
    assert list(letter.references.order_by("tier").values_list("writer", flat=True)) == ["a", "b"]
    assert Instruction.objects.get(dataset=dataset, external_id="2").split == "eval"


def test_it_imports_writingbench_items(tmp_path: Path) -> None:
    item = {
        "index": 16,
        "domain1": "Academic & Engineering",
        "domain2": "Introduction",
        "query": "Write an introduction of 2000-2500 words for my thesis.",
        "checklist": [{"name": "Depth", "criteria_description": "Goes deep.", "1-2": "shallow"}],
    }
    path = write_jsonl(tmp_path / "wb.jsonl", [item, {**item, "index": 17, "query": "A poem."}])
    dataset = dataset_import(name="wb", path=path)
    first, second = Instruction.objects.filter(dataset=dataset).order_by("id")
    assert dataset.source_format == "writingbench"
    assert (first.external_id, first.required_words, first.domain, first.subdomain) == (
        "16",
        2250,
        "Academic & Engineering",
        "Introduction",
    )
    assert first.criteria == item["checklist"]
    assert second.required_words is None


def test_it_imports_longbench_write_items(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "lbw.jsonl",
        [{"prompt": "Write 500 words on tea.", "type": "Popular Science", "length": 500}, "",
         {"prompt": "写一篇200字的文章", "type": "News", "length": 200}],
    )  # fmt: skip
    dataset = dataset_import(name="lbw", path=path)
    rows = list(
        Instruction.objects.filter(dataset=dataset).values_list(
            "external_id", "required_words", "domain"
        )
    )
    assert rows == [("line-1", 500, "Popular Science"), ("line-3", 200, "News")]


def test_it_reports_every_problem_with_line_and_field(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"id": "ok", "prompt": "fine"},
            {"id": "ok", "prompt": "duplicate id"},
            {"id": "x", "prompt": 7},
            {"id": "y", "prompt": "p", "required_words": "many"},
            {"id": "z", "prompt": "p", "references": [{"writer": "w", "text": "  "}]},
            {
                "id": "r",
                "prompt": "p",
                "references": [{"writer": "w", "text": "t", "score": "high"}],
            },
            "{not json",
            "[1, 2]",
            {"id": "s", "prompt": "p", "split": "dev"},
            {"id": "u", "prompt": "p", "refrences": []},
            {"prompt": "no id"},
            {"id": "t", "prompt": "p", "references": {"writer": "w"}},
        ],
    )
    assert problems_of(path, "jsonl") == [
        (3, "prompt"),
        (4, "required_words"),
        (5, "references[0].text"),
        (6, "references[0].score"),
        (7, "-"),
        (8, "-"),
        (9, "split"),
        (10, "refrences"),
        (11, "id"),
        (12, "references"),
        (2, "id"),
    ]
    with pytest.raises(DatasetImportError) as caught:
        dataset_import(name="bad", path=path, fmt="jsonl")
    assert "bad.jsonl, line 3, field prompt: must be a string, got a number" in str(caught.value)
    assert "duplicate id 'ok' (first used on line 1)" in str(caught.value)
    # All or nothing: the valid first line was not imported either.
    assert not Dataset.objects.exists() and not Instruction.objects.exists()


def test_it_reports_non_utf8_lines(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "caf\xe9"}\n')
    parsed = parse_dataset(path)
    assert [(p.line, p.field) for p in parsed.problems] == [(2, "-")]
    assert "not valid UTF-8" in parsed.problems[0].message


def test_it_refuses_files_over_the_size_limit(tmp_path: Path, settings) -> None:
    settings.WRITING_RL_MAX_DATASET_BYTES = 50
    path = write_jsonl(tmp_path / "big.jsonl", OURS)
    with pytest.raises(DatasetImportError, match="the limit is 50"):
        dataset_import(name="big", path=path)
    assert not Dataset.objects.exists()


def test_it_refuses_an_existing_name_an_unknown_format_and_undetectable_files(
    tmp_path: Path,
) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", OURS)
    dataset_import(name="taken", path=path)
    with pytest.raises(DatasetImportError, match="exists already"):
        dataset_import(name="taken", path=path)
    with pytest.raises(DatasetImportError, match="format"):
        dataset_import(name="new", path=path, fmt="csv")
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"title": "x"}])
    with pytest.raises(DatasetImportError, match="cannot tell the format"):
        dataset_import(name="odd", path=odd)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert problems_of(empty) == [(None, "-")]
    assert Dataset.objects.count() == 1


def test_it_checks_writingbench_and_longbench_fields(tmp_path: Path) -> None:
    wb = write_jsonl(
        tmp_path / "wb.jsonl",
        [{"index": 1, "query": "q", "checklist": []},
         {"index": 2, "query": "q", "checklist": ["x"]},
         {"index": True, "query": "q", "checklist": [{"criteria_description": "d"}]}],
    )  # fmt: skip
    assert problems_of(wb, "writingbench") == [(1, "checklist"), (2, "checklist[0]"), (3, "index")]
    lbw = write_jsonl(
        tmp_path / "lbw.jsonl",
        [{"prompt": "p", "type": "t", "length": 0}, {"prompt": "", "type": "t", "length": 5},
         {"prompt": "p", "type": "t", "length": None}],
    )  # fmt: skip
    assert problems_of(lbw, "longbench_write") == [(1, "length"), (2, "prompt"), (3, "length")]


def test_it_round_trips_through_the_verl_parquet(tmp_path: Path) -> None:
    original = dataset_import(name="ours", path=write_jsonl(tmp_path / "d.jsonl", OURS))
    summary = export_dataset(dataset=original, path=tmp_path / "out.parquet")
    assert (summary.rows, summary.skipped_without_references) == (2, 1)
    row = pq.read_table(tmp_path / "out.parquet").to_pylist()[0]
    truth = row["reward_model"]["ground_truth"]
    assert truth["target"] == [
        "Sea is big.",
        "The sea was calm and grey.",
        "The sea, silver at dawn...",
    ]
    assert (truth["id"], truth["prompt"], truth["criteria"]) == (
        "sea-1",
        OURS[0]["prompt"],
        "Vivid imagery.",
    )
    assert row["prompt"] == [{"role": "user", "content": OURS[0]["prompt"]}]

    copy = dataset_import(name="copy", path=tmp_path / "out.parquet")
    assert copy.source_format == "verl"

    def content(dataset: Dataset) -> list[tuple[object, ...]]:
        return [
            (i.external_id, i.prompt, json.dumps(i.criteria), i.required_words, i.domain, i.split,
             [(r.writer, r.text, r.score, r.tier) for r in i.references.order_by("tier")])
            for i in Instruction.objects.filter(dataset=dataset, references__isnull=False)
            .distinct().order_by("external_id")
        ]  # fmt: skip

    assert content(copy) == content(original)
    assert Reference.objects.filter(instruction__dataset=copy).count() == 5


def test_it_reports_verl_rows_by_row_and_field(tmp_path: Path) -> None:
    rows = [
        {
            "reward_model": {
                "ground_truth": {"id": "a", "prompt": "p", "target": ["weak", "strong"]}
            }
        },
        {"reward_model": {"ground_truth": {"id": "b", "prompt": "p", "target": []}}},
        {"reward_model": {"ground_truth": {"id": "c", "prompt": "", "target": ["x", " "]}}},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "authors.parquet")
    parsed = parse_dataset(tmp_path / "authors.parquet")
    assert parsed.unit == "row"
    assert [(p.line, p.field) for p in parsed.problems] == [
        (2, "reward_model.ground_truth.target"),
        (3, "reward_model.ground_truth.prompt"),
        (3, "reward_model.ground_truth.target[1]"),
    ]
    with pytest.raises(DatasetImportError, match=r"authors\.parquet, row 2, field reward_model"):
        dataset_import(name="authors", path=tmp_path / "authors.parquet")
    rows[1:] = []
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "good.parquet")
    dataset = dataset_import(name="authors", path=tmp_path / "good.parquet")
    instruction = Instruction.objects.get(dataset=dataset)
    assert list(instruction.references.order_by("tier").values_list("writer", "text")) == [
        ("tier-0", "weak"), ("tier-1", "strong")
    ]  # fmt: skip


def test_it_imports_an_upload_in_one_transaction(tmp_path: Path) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("up.jsonl", write_jsonl(tmp_path / "u.jsonl", OURS).read_bytes())
    dataset = dataset_import(name="uploaded", uploaded_file=upload)
    assert dataset.source_filename == "up.jsonl"
    assert dataset.instructions.count() == 3
