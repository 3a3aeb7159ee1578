"""Imports take a split (or hold out a seeded fraction), and a wrong --format says which
format the file looks like."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.webapp.studio.test_importers import write_jsonl
from webapp.studio.models import Instruction
from webapp.studio.services.datasets import DatasetImportError, dataset_import

pytestmark = pytest.mark.django_db

WRITINGBENCH = [
    {"index": n, "query": f"Write memo {n}.", "domain1": "Business",
     "checklist": [{"name": "Tone", "criteria_description": "Formal."}]}
    for n in range(10)
]  # fmt: skip


def splits(name: str) -> dict[str, int]:
    rows = Instruction.objects.filter(dataset__name=name).values_list("split", flat=True)
    return {s: list(rows).count(s) for s in set(rows)}


def test_an_import_lands_in_the_chosen_split(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wb.jsonl", WRITINGBENCH)
    dataset_import(name="held", path=path, split="eval")
    assert splits("held") == {"eval": 10}
    dataset_import(name="default", path=path)
    assert splits("default") == {"train": 10}
    with pytest.raises(DatasetImportError) as caught:
        dataset_import(name="bad", path=path, split="holdout")
    assert "split" in caught.value.lines()[0]


def test_an_import_holds_out_a_seeded_fraction(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wb.jsonl", WRITINGBENCH)
    dataset_import(name="a", path=path, eval_fraction=0.3, seed=7)
    dataset_import(name="b", path=path, eval_fraction=0.3, seed=7)
    assert splits("a") == {"eval": 3, "train": 7}

    def held(name: str) -> set[str]:
        return set(
            Instruction.objects.filter(dataset__name=name, split="eval").values_list(
                "external_id", flat=True
            )
        )

    assert held("a") == held("b")  # the same seed, the same draw
    dataset_import(name="c", path=path, eval_fraction=0.3, seed=8)
    assert len(held("c")) == 3
    with pytest.raises(DatasetImportError, match="eval_fraction"):
        dataset_import(name="d", path=path, eval_fraction=1.5)


def test_a_wrong_format_says_what_the_file_looks_like(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wb.jsonl", WRITINGBENCH)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("import_dataset", str(path), name="x", fmt="jsonl", stderr=err)
    first = err.getvalue().splitlines()[0]
    assert "this looks like WritingBench; try --format writingbench" in first
    out = io.StringIO()
    call_command(
        "import_dataset", str(path), name="y", fmt="writingbench", eval_fraction=0.2, stdout=out
    )
    assert "splits: eval 2, train 8" in out.getvalue()


def test_the_upload_form_takes_a_split(staff_client: Client, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "wb.jsonl", WRITINGBENCH)
    with open(path, "rb") as handle:
        response = staff_client.post(
            "/studio/datasets/upload/",
            {"name": "uploaded", "file": handle, "format": "auto", "split": "eval", "seed": 0},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert splits("uploaded") == {"eval": 10}
    with open(path, "rb") as handle:
        html = staff_client.post(
            "/studio/datasets/upload/",
            {"name": "wrong", "file": handle, "format": "longbench_write", "split": "train"},
        ).content.decode()
    assert "this looks like WritingBench" in html
