"""Every malformed input of the issue: a clear message naming the file, line and field (exit
status 2 from commands, 4xx from pages and the internal API), and nothing imported or stored."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tests.webapp.ops.conftest import TOKEN, make_run
from tests.webapp.studio_views.factories import make_dataset
from tests.webapp.studio_views.test_run_new import form_data
from webapp.studio.models import Dataset, Judgment, Run

GOOD = {"id": "a", "prompt": "Write about tides.", "references": [{"writer": "w", "text": "t"}]}


def _import(path: Path) -> str:
    """Run import_dataset, expect exit status 2; returns what it wrote on stderr."""
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_dataset", str(path), "--name", "probe", stderr=err)
    assert caught.value.returncode == 2
    assert not Dataset.objects.exists()
    return err.getvalue()


def _jsonl(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "probe.jsonl"
    path.write_text("\n".join([json.dumps(GOOD), *lines]) + "\n")
    return path


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("line", "field", "says"),
    [
        (
            '{"id": "b", "prompt": "x", "metadata": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "-",
            "nested more than",
        ),
        (
            '{"id": "b", "prompt": "x", "metadata": {"a": ' + "[" * 30 + "]" * 30 + "}}",
            "metadata.a",
            "nested more than",
        ),
        (
            '{"id": "b", "prompt": "x", "required_words": ' + "9" * 5000 + "}",
            "-",
            "integer string conversion",
        ),
        ('{"id": "b", "prompt": "x", "required_words": 1e20}', "required_words", "at most"),
        ('{"id": "b", "prompt": "nul \\u0000 here"}', "prompt", "NUL"),
        ('{"id": "b", "prompt": "x", "metadata": {"score": NaN}}', "-", "NaN"),
        ('{"id": "b", "prompt": "x", "metadata": {"score": 1e999}}', "metadata.score", "finite"),
    ],
    ids=["deep-json", "nested-metadata", "5000-digits", "required-1e20", "nul", "nan", "inf"],
)
def test_a_malformed_line_is_named_and_nothing_is_imported(
    tmp_path: Path, line: str, field: str, says: str
) -> None:
    report = _import(_jsonl(tmp_path, line))
    assert f"probe.jsonl, line 2, field {field}" in report, report
    assert says in report, report


@pytest.mark.django_db
def test_a_million_bad_lines_list_the_first_100_and_count_them_all(
    researcher_client: Client,
) -> None:
    body = b"x\n" * 1_000_000  # 2 MB
    started = time.perf_counter()
    response = researcher_client.post(
        "/studio/datasets/upload/",
        {"name": "junk", "format": "jsonl", "file": SimpleUploadedFile("junk.jsonl", body)},
    )
    elapsed = time.perf_counter() - started
    assert response.status_code == 400
    page = response.content.decode()
    assert "1000000 problems; nothing was imported" in page
    assert page.count('<tr class="problem">') == 100
    assert "999900 more are not" in page
    assert len(page) < 200_000  # not a 124 MB page
    assert elapsed < 20, elapsed
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_a_small_compressed_parquet_of_huge_text_is_refused_unread(
    tmp_path: Path, settings: Any
) -> None:
    settings.WRITING_RL_MAX_DATASET_BYTES = 10 * 1024 * 1024
    reference = "a" * (40 * 1024 * 1024)
    table = pa.table({
        "data_source": ["probe"],
        "prompt": [[{"role": "user", "content": "Write."}]],
        "reward_model": [{"style": "model", "ground_truth": {
            "id": "1", "prompt": "Write.", "target": [reference], "criteria": None}}],
    })  # fmt: skip
    path = tmp_path / "bomb.parquet"
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 100_000  # compressed, it is small
    report = _import(path)
    assert "decompresses to" in report and "WRITING_RL_MAX_DATASET_BYTES" in report


@pytest.mark.django_db
def test_an_overlong_field_is_refused(tmp_path: Path, settings: Any) -> None:
    settings.WRITING_RL_MAX_FIELD_CHARS = 1000
    record = {**GOOD, "id": "b", "prompt": "p" * 1001}
    report = _import(_jsonl(tmp_path, json.dumps(record)))
    assert "line 2, field prompt: is 1,001 characters long; the limit is 1,000" in report


@pytest.mark.django_db
def test_too_many_instructions_are_refused(tmp_path: Path, settings: Any) -> None:
    settings.WRITING_RL_MAX_IMPORT_ITEMS = 3
    lines = [json.dumps({**GOOD, "id": f"n{i}"}) for i in range(5)]
    report = _import(_jsonl(tmp_path, *lines))
    assert "more than 3 instructions" in report


# -- forms ---------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field_says"),
    [
        ({"max_steps": 10**12}, "Max steps must be at most 10,000,000"),
        ({"generation_kwargs": '{"a": {"b": {"c": 1}}}'}, "generation_kwargs"),
        ({"generation_kwargs": "[" * 50_000 + "]" * 50_000}, "At most 10,000 characters"),
        ({"generation_kwargs": '{"a": ' + "9" * 5000 + "}"}, "Not valid JSON here"),
        ({"num_generations": 10**9}, "Group size (rollouts per prompt) must be at most"),
        ({"name": "nul\x00name"}, "Null characters are not allowed"),
        ({"policy": "/etc"}, "model roots"),
        ({"judge_cache_path": "/tmp/cache.sqlite"}, "under the runs directory"),
    ],
    ids=[
        "max-steps",
        "nested-kwargs",
        "deep-kwargs",
        "huge-number",
        "generations",
        "nul",
        "policy-path",
        "cache-path",
    ],
)
def test_the_run_form_answers_400_and_creates_nothing(
    researcher_client: Client, change: dict[str, Any], field_says: str
) -> None:
    dataset = make_dataset()
    response = researcher_client.post("/studio/runs/new/", form_data(dataset.pk, **change))
    assert response.status_code == 400
    assert field_says in response.content.decode().replace("&#x27;", "'")
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_a_campaign_on_a_run_without_a_checkpoint_is_a_message(
    researcher_client: Client, annotator: Any
) -> None:
    dataset = make_dataset()
    run = Run.objects.create(name="no checkpoint", dataset=dataset, status=Run.Status.SUCCEEDED)
    response = researcher_client.post(
        "/annotate/campaigns/new/",
        {
            "name": "c", "dataset": dataset.pk, "limit": 2, "runs": [run.pk],
            "base_policy": "smollm2-135m-instruct", "overlap": 1, "lease_minutes": 30,
            "max_new_tokens": 16, "annotators": [annotator.pk],
        },
    )  # fmt: skip
    assert response.status_code == 400
    assert "checkpoint" in response.content.decode()


# -- internal API --------------------------------------------------------------------------------


def _post(client: Client, run: Run, endpoint: str, raw: str) -> Any:
    return client.post(
        f"/internal/runs/{run.pk}/{endpoint}",
        data=raw,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )


def _judgment(sample: str, **change: Any) -> dict[str, Any]:
    return {
        "sample_id": sample, "step": 1, "rollout": "text", "reference_tier": 0,
        "verdict": "B", "position": "second", "judge": "j", "latency_s": 0.2, **change,
    }  # fmt: skip


@pytest.fixture
def api_run(db: None, settings: Any) -> Any:
    settings.WRITING_RL_INTERNAL_API_TOKEN = TOKEN
    return make_run()


@pytest.mark.parametrize(
    ("endpoint", "raw", "says"),
    [
        ("tiers", '{"sample_ids": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested"),
        ("tiers", '{"sample_ids": [[[[[[[[[["x"]]]]]]]]]]}', "nested more than"),
        ("tiers", '{"sample_ids": [], "step": 1000000000000000000000000000000}', "at most"),
        (
            "outcomes",
            json.dumps(
                {
                    "outcomes": [
                        {
                            "sample_id": "1",
                            "step": 10**30,
                            "wins": 1,
                            "ties": 0,
                            "losses": 0,
                            "invalid": 0,
                            "advance": True,
                        }
                    ]
                }
            ),
            "step: must be at most",
        ),
        ("judgments", '{"judgments": [{"latency_s": NaN}]}', "not a finite number"),
    ],
    ids=["deep-body", "nested-body", "huge-step", "huge-outcome-step", "nan"],
)
def test_the_internal_api_answers_400_naming_the_field(
    client: Client, api_run: Any, endpoint: str, raw: str, says: str
) -> None:
    response = _post(client, api_run.run, endpoint, raw)
    assert response.status_code == 400, response.content
    assert says in response.json()["error"]


@pytest.mark.parametrize("value", ["1e999", "-1e999"])
def test_the_internal_api_refuses_infinite_latency_and_reward(
    client: Client, api_run: Any, value: str
) -> None:
    sample = api_run.sample_id(0)
    for field in ("latency_s", "reward"):
        # 1e999 is valid JSON that Python reads as infinity.
        raw = json.dumps({"judgments": [_judgment(sample, **{field: 0.5})]})
        raw = raw.replace(f'"{field}": 0.5', f'"{field}": {value}')
        response = _post(client, api_run.run, "judgments", raw)
        assert response.status_code == 400
        assert f"judgments[0].{field}" in response.json()["error"]
    assert not Judgment.objects.exists()


def test_a_replayed_judgments_call_changes_nothing(client: Client, api_run: Any) -> None:
    sample = api_run.sample_id(0)
    records = [_judgment(sample), _judgment(sample), _judgment(sample, position="first")]
    body = json.dumps({"judgments": records})
    first = _post(client, api_run.run, "judgments", body)
    assert first.json() == {"stored": 3, "duplicates": 0}  # two identical rollouts stay two
    again = _post(client, api_run.run, "judgments", body)
    assert again.json() == {"stored": 3, "duplicates": 3}
    assert Judgment.objects.filter(run=api_run.run).count() == 3


def test_a_replayed_outcomes_call_changes_nothing(client: Client, api_run: Any) -> None:
    outcome = {"sample_id": api_run.sample_id(0), "step": 3, "wins": 2, "ties": 0, "losses": 0,
               "invalid": 0, "advance": True}  # fmt: skip
    first = _post(client, api_run.run, "outcomes", json.dumps({"outcomes": [outcome]}))
    assert first.status_code == 200 and len(first.json()["transitions"]) == 1
    tiers_after_first = _post(
        client, api_run.run, "tiers", json.dumps({"sample_ids": [api_run.sample_id(0)]})
    ).json()
    again = _post(client, api_run.run, "outcomes", json.dumps({"outcomes": [outcome]}))
    assert again.status_code == 200 and again.json()["transitions"] == []
    assert (
        _post(
            client, api_run.run, "tiers", json.dumps({"sample_ids": [api_run.sample_id(0)]})
        ).json()
        == tiers_after_first
    )


def test_the_internal_api_refuses_nul_characters(client: Client, api_run: Any) -> None:
    # PostgreSQL text cannot hold U+0000: refused with the field, not a 500 from the database.
    raw = json.dumps({"judgments": [_judgment(api_run.sample_id(0), rollout="a\x00b")]})
    response = _post(client, api_run.run, "judgments", raw)
    assert response.status_code == 400
    assert "judgments[0].rollout: contains a NUL character" in response.json()["error"]
    assert not Judgment.objects.exists()
