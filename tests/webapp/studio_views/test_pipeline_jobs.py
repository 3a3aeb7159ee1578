"""The dataset page's pipeline panel: queue jobs from forms, follow them, cancel them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.webapp.studio_views.factories import make_dataset
from webapp.studio.models import PipelineJob

pytestmark = pytest.mark.usefixtures("pipeline_endpoints")


def post(client: Client, dataset_pk: int, **data: object) -> Any:
    return client.post(f"/studio/datasets/{dataset_pk}/jobs/new/", data)


def test_it_shows_a_form_for_each_job_kind(staff_client: Client) -> None:
    dataset = make_dataset("d")
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    for label in (
        "Generate references",
        "Score references",
        "Generate and score the policy",
        "Order tiers by score",
    ):
        assert label in html
    assert html.count('name="kind"') == 4
    assert "No pipeline job yet." in html


@pytest.mark.django_db(transaction=True)
def test_it_queues_a_reference_writer_job_on_the_gpu_queue(
    staff_client: Client, sent: list[dict[str, Any]]
) -> None:
    dataset = make_dataset("d")
    response = post(
        staff_client, dataset.pk, kind="generate_references", name="smollm2-careful",
        endpoint="local", model="smollm2-135m-instruct", max_tokens=300,
        temperature=0.5, plan_then_write="on", split="train",
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"].endswith("#jobs")
    job = PipelineJob.objects.get()
    assert job.kind == "generate_references" and job.params["split"] == "train"
    (writer,) = job.params["writers"]
    assert (writer["name"], writer["endpoint"], writer["model"]) == (
        "smollm2-careful", "local", "smollm2-135m-instruct",
    )  # fmt: skip
    assert writer["max_tokens"] == 300 and writer["plan_then_write"] is True
    assert sent == [
        {"args": [job.pk], "task_id": job.task_id, "queue": "gpu", "routing_key": "gpu"}
    ]
    page = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert f"#{job.pk} generate references" in page and "every 2s" in page


def test_an_endpoint_writer_needs_its_model_and_nothing_is_queued(
    staff_client: Client, sent: list[dict[str, Any]]
) -> None:
    dataset = make_dataset("d")
    response = post(
        staff_client, dataset.pk, kind="generate_references", name="gpt", endpoint="vllm",
        max_tokens=100, temperature=0.7,
    )  # fmt: skip
    assert response.status_code == 400
    html = response.content.decode()
    assert "endpoint &#x27;vllm&#x27; needs a model" in html
    assert "<details open>" in html  # the form with the error is open
    assert not PipelineJob.objects.exists() and sent == []


def test_a_pasted_key_is_refused_and_not_echoed(
    staff_client: Client, sent: list[dict[str, Any]]
) -> None:
    dataset = make_dataset("d")
    response = post(
        staff_client, dataset.pk, kind="score_references", scorer_endpoint="dashscope",
        scorer_model="sk-live-abc123",
    )  # fmt: skip
    assert response.status_code == 400
    html = response.content.decode()
    assert "looks like an API key" in html
    assert "sk-live-abc123" not in html
    assert not PipelineJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_queues_grading_and_policy_answers_with_an_endpoint_or_the_heuristic(
    staff_client: Client, sent: list[dict[str, Any]], settings: Any
) -> None:
    settings.WRITING_RL_MODEL_ROOTS = [Path("/models")]  # the deployment's model directory
    dataset = make_dataset("d")
    post(
        staff_client, dataset.pk, kind="score_references", scorer_endpoint="dashscope",
        scorer_model="qwen-plus", scorer_structured_output="json_schema", rescore="on",
    )  # fmt: skip
    post(
        staff_client, dataset.pk, kind="policy_responses", policy="/models/qwen-7b",
        scorer_endpoint="heuristic", max_new_tokens=512, temperature=0.7,
    )  # fmt: skip
    post(staff_client, dataset.pk, kind="order_tiers")
    score, answer, order = PipelineJob.objects.order_by("pk")
    assert score.params["rescore"] is True
    scorer = score.params["scorer"]
    assert (scorer["endpoint"], scorer["model"], scorer["structured_output"]) == (
        "dashscope", "qwen-plus", "json_schema",
    )  # fmt: skip
    assert "api_key_env" not in scorer and "DASHSCOPE_API_KEY" not in str(score.params)
    assert answer.params == {
        "policy": "/models/qwen-7b", "scorer": None, "max_new_tokens": 512, "temperature": 0.7,
    }  # fmt: skip
    assert order.params == {}
    assert [call["queue"] for call in sent] == ["judge", "gpu", "default"]


def test_an_unknown_kind_is_a_404(staff_client: Client) -> None:
    dataset = make_dataset("d")
    assert post(staff_client, dataset.pk, kind="select_everything").status_code == 404


def test_the_panel_polls_while_a_job_is_active_and_stops_after(staff_client: Client) -> None:
    dataset = make_dataset("d")
    job = PipelineJob.objects.create(
        kind="score_references", dataset=dataset, status="running", progress=0.4,
        message="scored 4/10",
    )  # fmt: skip
    url = f"/studio/datasets/{dataset.pk}/"
    fragment = staff_client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<div id="jobs"') and "scored 4/10" in html and "40%" in html
    PipelineJob.objects.filter(pk=job.pk).update(status="succeeded", progress=1.0)
    assert staff_client.get(url, headers={"HX-Request": "true"}).status_code == 286


def test_cancel_stops_a_queued_job_and_asks_a_running_one_to_stop(staff_client: Client) -> None:
    dataset = make_dataset("d")
    queued = PipelineJob.objects.create(kind="order_tiers", dataset=dataset)
    running = PipelineJob.objects.create(kind="score_references", dataset=dataset, status="running")
    for job in (queued, running):
        response = staff_client.post(f"/studio/jobs/{job.pk}/cancel/")
        assert response.status_code == 302 and response["Location"].endswith("#jobs")
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == "cancelled"
    assert running.status == "running" and running.cancel_requested
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "cancelling" in html
