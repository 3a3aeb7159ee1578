"""Every form that takes an endpoint refuses, with a form error and a 4xx, a pasted key (never
echoed), an endpoint name the deployment does not declare, and — where a local model may be
chosen — a model path outside the model roots; nothing is stored and no request is made.

The forms: a run, the three pipeline jobs (scorer, writer, policy answers), an evaluation,
evaluating a run, an ablation, a campaign's judge run, and a judge check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from rl_engine.testing import FakeOpenAIServer
from tests.webapp.annotation.factories import make_campaign
from tests.webapp.studio_views.factories import make_dataset
from tests.webapp.studio_views.test_run_new import form_data
from webapp.annotation.models import JudgeRun
from webapp.evals.models import AblationGrid, EvalRun, RunEvaluation
from webapp.studio.models import Dataset, JudgeCheck, PipelineJob, Run
from webapp.studio.roles import grant_researcher

pytestmark = pytest.mark.django_db

PASTED = "sk-proj-Zq81mXv02LaPc7"
POLICY = "smollm2-135m-instruct"


@pytest.fixture
def lab(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Any) -> Iterator[list[Any]]:
    """One declared endpoint ("lab") whose fake server records every call."""
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    settings.WRITING_RL_MODEL_ROOTS = [tmp_path / "models"]
    calls: list[Any] = []

    def answer(call: Any) -> str:
        calls.append(call)
        return "[[A]]"

    with FakeOpenAIServer(latency_s=0.0, policy=answer) as server:
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS",
            json.dumps([{"name": "lab", "base_url": server.base_url, "models": ["m"]}]),
        )
        yield calls


@pytest.fixture
def client_in(db: None) -> Client:
    client = Client()
    client.force_login(grant_researcher(User.objects.create_user("res", password="pw-res-123")))
    return client


# Each form: (url, the valid data but its endpoint fields, the endpoint fields' names, whether
# it offers the local endpoint). Built inside the test: they need rows.
FormCase = Callable[[Dataset], tuple[str, dict[str, Any], str, str, bool]]


def _run(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    return "/studio/runs/new/", form_data(dataset.pk), "judge_endpoint", "judge_model", True


def _scorer(kind: str) -> FormCase:
    def case(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
        data = {"kind": kind, "policy": POLICY, "max_new_tokens": 8, "temperature": 0.5}
        return (f"/studio/datasets/{dataset.pk}/jobs/new/", data, "scorer_endpoint",
                "scorer_model", False)  # fmt: skip

    return case


def _writer(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    data = {"kind": "generate_references", "name": "w", "max_tokens": 8, "temperature": 0.5}
    return f"/studio/datasets/{dataset.pk}/jobs/new/", data, "endpoint", "model", True


def _evaluation(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    data = {"benchmark": "longbench_write", "system_kind": "base_model", "base_model": POLICY,
            "dataset": dataset.pk, "split": "", "max_new_tokens": 16, "batch_size": 2,
            "temperature": 0.0, "iterations": 1, "context_tokens": 2048}  # fmt: skip
    return "/evals/new/", data, "judge_endpoint", "judge_model", True


def _run_evaluation(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    run = Run.objects.create(name="trained", dataset=dataset, config={}, status="succeeded")
    data = {"benchmarks": ["longbench_write"], "include_base": "on", "dataset": dataset.pk,
            "split": "", "max_new_tokens": 8}  # fmt: skip
    return f"/evals/runs/{run.pk}/evaluate/", data, "judge_endpoint", "judge_model", True


def _ablation(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    data = {"name": "probe", "dataset": dataset.pk, "selections": ["full"],
            "rewards": ["pairwise"], "curricula": ["dynamic"], "policy": POLICY,
            "algorithm": "grpo", "max_steps": 2, "prompts_per_step": 1, "num_generations": 2,
            "max_completion_tokens": 8, "learning_rate": 1e-5, "seed": 0,
            "eval_benchmark": "longbench_write", "eval_split": "",
            "eval_max_new_tokens": 8}  # fmt: skip
    return "/evals/ablations/new/", data, "judge_endpoint", "judge_model", True


def _judge_run(dataset: Dataset) -> tuple[str, dict[str, Any], str, str, bool]:
    annotators = [User.objects.create_user(f"a{i}", password="pw-ann-123") for i in range(2)]
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    return f"/annotate/campaigns/{campaign.pk}/judge/", {}, "endpoint", "model", False


FORMS: dict[str, FormCase] = {
    "run": _run,
    "pipeline scorer": _scorer("score_references"),
    "pipeline policy answers": _scorer("policy_responses"),
    "pipeline writer": _writer,
    "evaluation": _evaluation,
    "evaluate a run": _run_evaluation,
    "ablation": _ablation,
    "judge run": _judge_run,
}


def stored_nothing() -> None:
    assert not Run.objects.filter(name__in=["r", "probe"]).exists()
    assert not PipelineJob.objects.exists() and not EvalRun.objects.exists()
    assert not RunEvaluation.objects.exists() and not AblationGrid.objects.exists()
    assert not JudgeRun.objects.exists() and not JudgeCheck.objects.exists()


PROBES = {
    # probe -> (endpoint, model, what the page says)
    "pasted key": ("lab", PASTED, "looks like an API key"),
    "unknown endpoint": ("attacker", "m", "Select a valid choice"),
    "path outside the roots": ("local", "/etc", "model roots"),
}


@pytest.mark.parametrize("probe", list(PROBES))
@pytest.mark.parametrize("form", list(FORMS))
def test_every_endpoint_form_refuses_the_probe(
    client_in: Client, lab: list[Any], form: str, probe: str
) -> None:
    dataset = make_dataset(instructions=2)
    url, data, endpoint_field, model_field, offers_local = FORMS[form](dataset)
    endpoint, model, message = PROBES[probe]
    if probe == "path outside the roots" and not offers_local:
        endpoint, message = "local", "Select a valid choice"  # not even offered
    response = client_in.post(url, {**data, endpoint_field: endpoint, model_field: model})
    page = response.content.decode()
    assert 400 <= response.status_code < 500, (response.status_code, page[:2000])
    assert message in page, page[:3000]
    assert PASTED not in page
    stored_nothing()
    assert lab == []


@pytest.mark.parametrize(
    ("judge", "message"),
    [
        ({"endpoint": "lab", "model": PASTED}, "looks like an API key"),
        ({"endpoint": "lab", "model": "m", "extra_body": {"key": PASTED}}, "looks like an API key"),
        ({"endpoint": "attacker", "model": "m"}, "unknown endpoint"),
        ({"endpoint": "local", "model": "/etc"}, "model roots"),
        ({"endpoint": "heuristic", "cache_path": "/tmp/probe.sqlite"}, "runs directory"),
        ({"endpoint": "lab", "model": "m", "api_key_env": "SECRET_KEY"}, "api_key_env"),
        ({"endpoint": "lab", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
         "has its own base URL"),
    ],
    ids=["pasted", "pasted-in-body", "unknown", "path", "cache", "key-variable", "base-url"],
)  # fmt: skip
def test_the_judge_check_form_refuses_the_probe(
    client_in: Client, lab: list[Any], judge: dict[str, Any], message: str
) -> None:
    dataset = make_dataset(instructions=2)
    response = client_in.post(
        f"/studio/datasets/{dataset.pk}/judge-check/",
        {"judge": json.dumps(judge), "pairs": 2, "min_parse_rate": 0.5, "min_consistency": 0.5},
    )
    page = response.content.decode()
    assert response.status_code == 400, page[:2000]
    assert message in page, page[:3000]
    assert PASTED not in page
    stored_nothing()
    assert lab == []
