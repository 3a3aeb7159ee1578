"""The internal API of the verl reward hook: auth, validation and round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.webapp.ops.conftest import TOKEN, RunWithCurriculum
from webapp.studio.models import CurriculumState, CurriculumTransition, Judgment


def post(client: Client, run_id: int, endpoint: str, body: Any, token: str | None = TOKEN):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return client.post(
        f"/internal/runs/{run_id}/{endpoint}",
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def test_it_does_not_exist_when_no_token_is_configured(
    client: Client, run_with_curriculum: RunWithCurriculum, settings: Any
) -> None:
    settings.WRITING_RL_INTERNAL_API_TOKEN = ""
    response = post(client, run_with_curriculum.run.pk, "tiers", {"sample_ids": []}, token="")
    assert response.status_code == 404


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", TOKEN[:-1]])
def test_it_refuses_a_missing_or_wrong_token(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str, token: str | None
) -> None:
    sample = run_with_curriculum.sample_id(0)
    response = post(client, run_with_curriculum.run.pk, "tiers", {"sample_ids": [sample]}, token)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_it_refuses_another_scheme_and_get(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str
) -> None:
    url = f"/internal/runs/{run_with_curriculum.run.pk}/tiers"
    basic = client.post(
        url, data="{}", content_type="application/json", HTTP_AUTHORIZATION=f"Basic {TOKEN}"
    )
    assert basic.status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 405


def test_it_reads_tiers_and_answers_404_for_an_unknown_run(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str
) -> None:
    run = run_with_curriculum.run
    ids = [run_with_curriculum.sample_id(0), run_with_curriculum.sample_id(1)]
    body = post(client, run.pk, "tiers", {"sample_ids": ids}).json()
    assert body["tiers"][ids[0]] == {"tier": 0, "num_tiers": 3, "mastered": False, "last_step": -1}
    assert body["tiers"][ids[1]]["num_tiers"] == 2
    assert post(client, run.pk + 999, "tiers", {"sample_ids": ids}).status_code == 404


def test_it_round_trips_outcomes_and_answers_tiers_as_of_a_step(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str
) -> None:
    run = run_with_curriculum.run
    sample = run_with_curriculum.sample_id(0)
    win = {
        "sample_id": sample,
        "step": 3,
        "wins": 1,
        "ties": 0,
        "losses": 0,
        "invalid": 0,
        "advance": True,
    }
    first = post(client, run.pk, "outcomes", {"outcomes": [win]}).json()
    assert first["transitions"] == [
        {"sample_id": sample, "step": 3, "from_tier": 0, "to_tier": 1, "mastered": False}
    ]
    # A second win of the same step (another reward worker) changes nothing.
    assert post(client, run.pk, "outcomes", {"outcomes": [win]}).json()["transitions"] == []
    assert CurriculumState.objects.get(run=run, instruction__pk=int(sample)).tier == 1
    # Rollouts of step 3 are still judged against tier 0; step 4 sees tier 1.
    as_of = lambda step: post(  # noqa: E731
        client, run.pk, "tiers", {"sample_ids": [sample], "step": step}
    ).json()["tiers"][sample]["tier"]
    assert (as_of(3), as_of(4), as_of(2)) == (0, 1, 0)
    post(client, run.pk, "outcomes", {"outcomes": [{**win, "step": 5}]})
    assert (as_of(3), as_of(5), as_of(6)) == (0, 1, 2)
    assert CurriculumTransition.objects.filter(run=run).count() == 2


def test_it_stores_judgments_as_a_trl_run_does(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str
) -> None:
    run = run_with_curriculum.run
    sample = run_with_curriculum.sample_id(1)
    base = {
        "sample_id": sample,
        "step": 2,
        "rollout": "my story",
        "reference_tier": 0,
        "reward": 1.0,
        "rationale": "B is better [[B]]",
        "judge": "openai:judge",
        "latency_s": 0.25,
        "attempts": 2,
        "prompt_tokens": 120,
        "completion_tokens": 9,
    }
    records = [
        {**base, "verdict": "B", "position": "second"},
        {**base, "verdict": "B", "position": "first", "reward": 0.0},
        {**base, "verdict": "TIE", "position": "second", "reward": 0.5},
        {
            **base,
            "verdict": "INVALID",
            "position": "second",
            "reward": None,
            "error": "no verdict",
        },
    ]
    response = post(client, run.pk, "judgments", {"judgments": records})
    assert response.json() == {"stored": 4, "duplicates": 0}
    rows = list(Judgment.objects.filter(run=run).order_by("id"))
    assert [r.verdict for r in rows] == ["win", "loss", "tie", "invalid"]
    assert [r.reward for r in rows] == [1.0, 0.0, 0.5, None]
    assert rows[0].instruction_id == int(sample)
    assert (rows[0].attempts, rows[0].prompt_tokens, rows[0].latency_s) == (2, 120, 0.25)
    assert rows[3].error == "no verdict"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"verdict": "maybe"}, "judgments[1].verdict"),
        ({"position": "left"}, "judgments[1].position"),
        ({"step": "two"}, "judgments[1].step: must be an integer"),
        ({"sample_id": "999999"}, "not in run"),
        ({"reward": "high"}, "judgments[1].reward"),
    ],
)
def test_it_refuses_a_bad_judgment_naming_the_field_and_stores_nothing(
    client: Client,
    run_with_curriculum: RunWithCurriculum,
    internal_token: str,
    change: dict[str, Any],
    message: str,
) -> None:
    good = {
        "sample_id": run_with_curriculum.sample_id(0),
        "step": 1,
        "rollout": "x",
        "reference_tier": 0,
        "verdict": "A",
        "position": "first",
        "reward": 1.0,
    }
    response = post(
        client, run_with_curriculum.run.pk, "judgments", {"judgments": [good, {**good, **change}]}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert Judgment.objects.count() == 0


def test_it_refuses_bad_outcomes_and_bodies(
    client: Client, run_with_curriculum: RunWithCurriculum, internal_token: str
) -> None:
    run = run_with_curriculum.run
    sample = run_with_curriculum.sample_id(0)
    bad = {
        "sample_id": sample,
        "step": 1,
        "wins": 1,
        "ties": 0,
        "losses": 0,
        "invalid": 0,
        "advance": "yes",
    }
    response = post(client, run.pk, "outcomes", {"outcomes": [bad]})
    assert response.status_code == 400 and "outcomes[0].advance" in response.json()["error"]
    not_json = client.post(
        f"/internal/runs/{run.pk}/outcomes",
        data="{",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )
    assert not_json.status_code == 400
    assert post(client, run.pk, "outcomes", {"outcomes": "all"}).status_code == 400
    assert CurriculumState.objects.get(run=run, instruction__pk=int(sample)).last_step == -1
