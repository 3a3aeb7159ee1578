"""The dataset page's "Prepare references" action: one form queues the chained jobs (write →
grade → order tiers, optionally → select) as one group; bad input is a form error and queues
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.webapp.studio_views.factories import make_dataset
from webapp.studio.models import PipelineJob

pytestmark = pytest.mark.usefixtures("pipeline_endpoints")


def prepare(client: Client, dataset_pk: int, **data: object) -> Any:
    fields: dict[str, object] = {
        "name": "gpt", "endpoint": "vllm", "model": "qwen-7b", "max_tokens": 300,
        "temperature": 0.7, "scorer_endpoint": "heuristic", "max_new_tokens": 64, "seed": 0,
    }  # fmt: skip
    return client.post(f"/studio/datasets/{dataset_pk}/prepare/", {**fields, **data})


def test_the_page_offers_the_action(staff_client: Client) -> None:
    dataset = make_dataset("d")
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "Prepare references" in html and f"/studio/datasets/{dataset.pk}/prepare/" in html
    assert 'id="id_prepare_limit"' in html
    # Endpoint fields are labelled in words, not by their config names.
    assert '<label for="id_prepare_max_tokens">Max tokens</label>' in html
    assert '<label for="id_prepare_scorer_structured_output">Grader structured output' in html


@pytest.mark.django_db(transaction=True)
def test_it_queues_the_chain_as_one_group_and_sends_only_its_first_step(
    staff_client: Client, sent: list[dict[str, Any]], settings: Any
) -> None:
    settings.WRITING_RL_MODEL_ROOTS = [Path("/models")]
    dataset = make_dataset("d", instructions=5)
    response = prepare(
        staff_client, dataset.pk, limit=2, split="train", strategy="margin", k=1,
        policy="/models/policy",
    )  # fmt: skip
    assert response.status_code == 302 and response["Location"].endswith("#jobs")
    write, grade, order, answer, select = PipelineJob.objects.order_by("pk")
    assert [j.kind for j in (write, grade, order, answer, select)] == [
        "generate_references", "score_references", "order_tiers", "policy_responses", "select",
    ]  # fmt: skip
    first_two = list(dataset.instructions.order_by("pk").values_list("pk", flat=True)[:2])
    assert all(
        j.params["instruction_ids"] == first_two for j in (write, grade, order, answer, select)
    )
    assert (select.params["strategy"], select.params["k"]) == ("margin", 1)
    assert set(select.depends_on.all()) == {order, answer}
    # Writing and the policy's answers have no input: sent at once; the rest wait.
    assert [call["args"] for call in sent] == [[write.pk], [answer.pk]]
    assert [j.status for j in (grade, order, select)] == ["waiting"] * 3
    page = staff_client.get(f"/studio/datasets/{dataset.pk}/")
    html = page.content.decode()
    assert "Prepare references: first 2 train instruction(s), then select margin k=1" in html
    assert f"waiting for job #{write.pk} (generate references)" in html
    assert f"waiting for job #{order.pk} (order reference tiers), job #{answer.pk}" in html
    assert "every 2s" in html  # waiting jobs keep the table polling
    # The group's jobs are listed together, in chain order, under one heading.
    rows = [html.index(f"#{j.pk} ") for j in (write, grade, order, answer, select)]
    assert rows == sorted(rows) and html.count('class="job-group"') == 1


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"limit": 0}, "greater than or equal to 1"),
        ({"strategy": "margin", "policy": ""}, "margin selection needs the policy to answer"),
        ({"strategy": "random", "split": "test"}, "Selection picks train instructions"),
        ({"endpoint": "vllm", "model": ""}, "needs a model"),
        ({"split": "test"}, "has no instructions in the test split"),
        ({"scorer_endpoint": "dashscope", "scorer_model": "sk-live-abc123"}, "an API key"),
    ],
)
def test_bad_input_is_a_form_error_and_queues_nothing(
    staff_client: Client, sent: list[dict[str, Any]], data: dict[str, object], error: str
) -> None:
    dataset = make_dataset("d")
    response = prepare(staff_client, dataset.pk, **data)
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html, html[html.find('id="prepare"') :][:3000]
    assert '<details id="prepare" open>' in html
    assert "sk-live-abc123" not in html
    assert not PipelineJob.objects.exists() and sent == []


def test_a_get_is_refused(staff_client: Client) -> None:
    dataset = make_dataset("d")
    assert staff_client.get(f"/studio/datasets/{dataset.pk}/prepare/").status_code == 405
