"""The upload form: a clean file becomes a dataset; a bad one lists every problem."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from webapp.studio.models import Dataset, Instruction, Reference


def jsonl(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode() + b"\n"


GOOD = {
    "id": "q1",
    "prompt": "Write a short story about a lighthouse.",
    "required_words": 300,
    "references": [
        {"writer": "small", "text": "A lighthouse stood.", "score": 3},
        {"writer": "large", "text": "The lighthouse keeper counted ships every night.", "score": 8},
    ],
}


def post(client: Client, content: bytes, name: str = "essays", filename: str = "d.jsonl"):
    upload = SimpleUploadedFile(filename, content, content_type="application/jsonl")
    return client.post("/studio/datasets/upload/", {"name": name, "file": upload, "format": "auto"})


def test_it_shows_the_form_with_every_format(staff_client: Client) -> None:
    html = staff_client.get("/studio/datasets/upload/").content.decode()
    assert 'enctype="multipart/form-data"' in html
    for fmt in ("jsonl", "writingbench", "longbench_write", "verl"):
        assert f'value="{fmt}"' in html


def test_it_imports_a_clean_file_and_opens_the_dataset(staff_client: Client) -> None:
    second = {**GOOD, "id": "q2", "prompt": "Describe the sea."}
    response = post(staff_client, jsonl(GOOD, second))
    dataset = Dataset.objects.get(name="essays")
    assert response.status_code == 302
    assert response["Location"] == f"/studio/datasets/{dataset.pk}/"
    assert dataset.instructions.count() == 2
    tiers = list(
        Reference.objects.filter(instruction__external_id="q1").values_list("tier", "writer")
    )
    assert tiers == [(0, "small"), (1, "large")]
    page = staff_client.get(response["Location"]).content.decode()
    assert "Imported dataset" in page and "lighthouse" in page


def test_it_lists_every_problem_with_line_and_field_and_imports_nothing(
    staff_client: Client,
) -> None:
    bad_prompt = {**GOOD, "id": "q2", "prompt": 7}
    no_text = {**GOOD, "id": "q3", "references": [{"writer": "w", "score": 1}]}
    content = jsonl(GOOD, bad_prompt) + b"{not json\n" + jsonl(no_text)
    response = post(staff_client, content)
    assert response.status_code == 400
    html = response.content.decode()
    assert "nothing was imported" in html
    rows = html.count('<tr class="problem">')
    assert rows >= 3, html
    assert "<td>2</td><td>prompt</td>" in html
    assert "<td>3</td>" in html and "not valid JSON" in html
    assert "<td>4</td><td>references[0].text</td>" in html
    assert not Dataset.objects.exists()
    assert not Instruction.objects.exists()


def test_it_refuses_a_taken_name_inline(staff_client: Client) -> None:
    Dataset.objects.create(name="essays")
    response = post(staff_client, jsonl(GOOD))
    assert response.status_code == 400
    assert "exists; choose another name" in response.content.decode()
    assert Dataset.objects.count() == 1


def test_it_reports_a_file_that_is_not_utf8(staff_client: Client) -> None:
    response = post(staff_client, jsonl(GOOD) + b'{"id": "x\xff"}\n')
    assert response.status_code == 400
    assert "UTF-8" in response.content.decode()
    assert not Dataset.objects.exists()
