"""A researcher cannot make a worker send the service's secrets anywhere, through any form
that takes an endpoint, nor through a stored spec edited in the database.

The probe: ``SECRET_KEY`` and ``WRITING_RL_INTERNAL_API_TOKEN`` are in the worker's
environment; an "attacker" server on a host the researcher controls records every request.
Each form is posted with every field an attacker would try (kind, base URL, key variable —
under the names the old forms used and the new ones) next to a legitimate endpoint choice;
whatever the form stored is then built and called the way the worker does. The attacker must
receive nothing, and no request anywhere may carry either secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from rl_engine.evaluation.evaluators import make_evaluators
from rl_engine.judging import JudgeSpec, PairRequest, make_judge
from rl_engine.judging.endpoints import registry_from_env
from rl_engine.testing import ChatCall, FakeOpenAIServer
from rl_engine.training import TrainConfig
from rl_engine.writers import WritingTask, make_writer
from tests.webapp.annotation.factories import make_campaign
from tests.webapp.studio_views.factories import make_dataset
from tests.webapp.studio_views.test_run_new import form_data
from webapp.annotation.models import JudgeRun
from webapp.evals.models import AblationGrid, EvalRun
from webapp.evals.services.config import build_judge
from webapp.studio.models import PipelineJob, Run
from webapp.studio.roles import grant_researcher
from webapp.studio.services.pipeline import make_pointwise_scorer

SECRET = "django-secret-probe-0f3a9c"
TOKEN = "internal-token-probe-7b21e4"
LAB_KEY = "lab-key-probe-55aa01"
POLICY = "smollm2-135m-instruct"  # a known model name (paths must lie under the model roots)
PAIR = PairRequest("Write a haiku.", "First answer.", "Second answer.")


class Recorder:
    """Every header and body a fake server received."""

    def __init__(self) -> None:
        self.calls: list[ChatCall] = []

    def __call__(self, call: ChatCall) -> str:
        self.calls.append(call)
        if '"score"' in call.system:
            return '{"score": 7, "reason": "fine"}'
        return "Some text. [[A]]"

    def seen(self) -> str:
        return json.dumps([[c.headers, c.body] for c in self.calls])


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The deployment's one endpoint ("lab", with a key), and the attacker's server."""
    lab, attacker = Recorder(), Recorder()
    with (
        FakeOpenAIServer(latency_s=0.0, policy=lab) as lab_server,
        FakeOpenAIServer(latency_s=0.0, policy=attacker) as attacker_server,
    ):
        monkeypatch.setenv("SECRET_KEY", SECRET)
        monkeypatch.setenv("WRITING_RL_INTERNAL_API_TOKEN", TOKEN)
        monkeypatch.setenv("LAB_KEY", LAB_KEY)
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS",
            json.dumps(
                [
                    {
                        "name": "lab",
                        "base_url": lab_server.base_url,
                        "models": ["m"],
                        "api_key_env": "LAB_KEY",
                    }
                ]
            ),
        )
        yield {"lab": lab, "attacker": attacker, "attacker_url": attacker_server.base_url,
               "attacker_server": attacker_server}  # fmt: skip


def hostile_fields(url: str, prefixes: tuple[str, ...]) -> dict[str, str]:
    """Every field name an attacker would add to a form, under each prefix."""
    fields: dict[str, str] = {}
    for prefix in prefixes:
        fields |= {
            f"{prefix}kind": "openai",
            f"{prefix}base_url": url,
            f"{prefix}api_key_env": "SECRET_KEY",
            f"{prefix}key_env": "WRITING_RL_INTERNAL_API_TOKEN",
            f"{prefix}api_key": "$SECRET_KEY",
        }
    return fields


def assert_nothing_leaked(servers: dict[str, Any], *stored: Any) -> None:
    assert servers["attacker"].calls == []
    assert servers["attacker_server"].stats().requests == 0
    seen = servers["lab"].seen()
    assert SECRET not in seen and TOKEN not in seen
    for value in stored:
        text = json.dumps(value)
        for forbidden in (SECRET, TOKEN, "SECRET_KEY", "WRITING_RL_INTERNAL_API_TOKEN",
                          servers["attacker_url"]):  # fmt: skip
            assert forbidden not in text, (forbidden, text)


@pytest.fixture
def researcher_client(client: Client, db: None) -> Client:
    client.force_login(grant_researcher(User.objects.create_user("res", password="pw-res-123")))
    client.get("/studio/")
    return client


def call_judge(spec: JudgeSpec) -> None:
    judge = make_judge(spec)
    judge.compare_sync([PAIR])
    close = getattr(judge, "close", None)
    if close:
        close()


# -- through every form -----------------------------------------------------------------------


def test_the_run_form(researcher_client: Client, servers: dict[str, Any]) -> None:
    dataset = make_dataset(instructions=2)
    data = {**form_data(dataset.pk), "judge_endpoint": "lab", "judge_model": "m",
            **hostile_fields(servers["attacker_url"], ("judge_", ""))}  # fmt: skip
    response = researcher_client.post("/studio/runs/new/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    run = Run.objects.get()
    call_judge(TrainConfig.from_dict(run.config).judge)
    assert len(servers["lab"].calls) == 1
    assert_nothing_leaked(servers, run.config)


@pytest.mark.parametrize("kind", ["score_references", "policy_responses", "generate_references"])
def test_the_pipeline_forms(researcher_client: Client, servers: dict[str, Any], kind: str) -> None:
    dataset = make_dataset(instructions=1)
    data: dict[str, Any] = {
        **hostile_fields(servers["attacker_url"], ("", "scorer_", "writer_")),
        "kind": kind,
    }  # fmt: skip (the job kind, not the endpoint's)
    if kind == "generate_references":
        data |= {"name": "w", "endpoint": "lab", "model": "m", "max_tokens": 64,
                 "temperature": 0.5}  # fmt: skip
    else:
        data |= {"scorer_endpoint": "lab", "scorer_model": "m", "policy": POLICY,
                 "max_new_tokens": 8, "temperature": 0.5}  # fmt: skip
    response = researcher_client.post(f"/studio/datasets/{dataset.pk}/jobs/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    job = PipelineJob.objects.get()
    if kind == "generate_references":
        [output] = make_writer(job.params["writers"][0]).write([WritingTask("A poem.")])
        assert output.text
    else:
        scorer = make_pointwise_scorer(job.params["scorer"])
        assert scorer.score_many_sync([("Write.", "Text.", None)])[0].value == 7
    assert len(servers["lab"].calls) == 1
    assert_nothing_leaked(servers, job.params)


def test_the_evaluation_form(researcher_client: Client, servers: dict[str, Any]) -> None:
    dataset = make_dataset(instructions=1)
    data = {
        "benchmark": "longbench_write", "system_kind": "base_model", "base_model": POLICY,
        "dataset": dataset.pk, "split": "", "max_new_tokens": 16, "batch_size": 2,
        "temperature": 0.0, "iterations": 1, "context_tokens": 2048,
        "judge_endpoint": "lab", "judge_model": "m",
        **hostile_fields(servers["attacker_url"], ("judge_", "")),
    }  # fmt: skip
    response = researcher_client.post("/evals/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    eval_run = EvalRun.objects.get()
    evaluators = make_evaluators(build_judge(eval_run.judge))
    assert evaluators.judge is not None
    evaluators.judge.compare_sync([PAIR])
    assert len(servers["lab"].calls) == 1
    assert_nothing_leaked(servers, eval_run.judge)


def test_the_ablation_form(researcher_client: Client, servers: dict[str, Any]) -> None:
    dataset = make_dataset(instructions=2)
    data = {
        "name": "probe", "dataset": dataset.pk, "selections": ["full"], "rewards": ["pairwise"],
        "curricula": ["dynamic"], "policy": POLICY, "algorithm": "grpo", "max_steps": 2,
        "prompts_per_step": 1, "num_generations": 2, "max_completion_tokens": 8,
        "learning_rate": 1e-5, "seed": 0, "judge_endpoint": "lab", "judge_model": "m",
        "eval_benchmark": "longbench_write", "eval_split": "", "eval_max_new_tokens": 8,
        **hostile_fields(servers["attacker_url"], ("judge_", "")),
    }  # fmt: skip
    response = researcher_client.post("/evals/ablations/new/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    grid = AblationGrid.objects.get()
    call_judge(JudgeSpec.from_dict(grid.base_config["judge"]))
    call_judge(JudgeSpec.from_dict(grid.eval_judge))
    for run in Run.objects.all():
        call_judge(TrainConfig.from_dict(run.config).judge)
    assert len(servers["lab"].calls) == 2 + Run.objects.count()
    assert_nothing_leaked(servers, grid.base_config, grid.eval_judge,
                          [r.config for r in Run.objects.all()])  # fmt: skip


def test_the_campaign_judge_form(researcher_client: Client, servers: dict[str, Any]) -> None:
    annotators = [User.objects.create_user(f"a{i}", password="pw-ann-123") for i in range(2)]
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    data = {"endpoint": "lab", "model": "m",
            **hostile_fields(servers["attacker_url"], ("", "judge_"))}  # fmt: skip
    response = researcher_client.post(f"/annotate/campaigns/{campaign.pk}/judge/", data)
    assert response.status_code == 302
    judge_run = JudgeRun.objects.get()
    call_judge(JudgeSpec.from_dict(judge_run.spec))
    assert len(servers["lab"].calls) == 1
    assert_nothing_leaked(servers, judge_run.spec)


# -- a key pasted into a form ---------------------------------------------------------------------

PASTED = "sk-proj-Zq81mXv02LaPc7"


def test_a_pasted_key_is_refused_and_never_stored_or_echoed(
    researcher_client: Client, servers: dict[str, Any]
) -> None:
    dataset = make_dataset(instructions=1)
    annotators = [User.objects.create_user(f"a{i}", password="pw-ann-123") for i in range(2)]
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    posts = [
        ("/studio/runs/new/", {**form_data(dataset.pk), "judge_endpoint": "lab",
                               "judge_model": PASTED}),
        (f"/studio/datasets/{dataset.pk}/jobs/new/", {"kind": "score_references",
                                                      "scorer_endpoint": "lab",
                                                      "scorer_model": PASTED}),
        (f"/studio/datasets/{dataset.pk}/jobs/new/", {"kind": "generate_references",
                                                      "name": "w", "endpoint": "lab",
                                                      "model": "m", "max_tokens": 8,
                                                      "temperature": 0.5,
                                                      "extra_body": json.dumps({"k": PASTED})}),
        ("/evals/new/", {"benchmark": "longbench_write", "system_kind": "base_model",
                         "base_model": POLICY, "dataset": dataset.pk, "max_new_tokens": 16,
                         "batch_size": 2, "temperature": 0.0, "iterations": 1,
                         "context_tokens": 2048, "judge_endpoint": "lab", "judge_model": PASTED}),
        (f"/annotate/campaigns/{campaign.pk}/judge/", {"endpoint": "lab", "model": PASTED}),
    ]  # fmt: skip
    for url, data in posts:
        response = researcher_client.post(url, data, follow=True)
        page = response.content.decode()
        assert PASTED not in page, url
        assert "looks like an API key" in page, url
    assert not Run.objects.exists() and not PipelineJob.objects.exists()
    assert not EvalRun.objects.exists() and not JudgeRun.objects.exists()
    assert servers["lab"].calls == [] and servers["attacker"].calls == []


# -- a stored spec edited in the database ---------------------------------------------------------


def test_a_stored_spec_edited_to_point_elsewhere_reaches_no_secret(
    servers: dict[str, Any],
) -> None:
    url = servers["attacker_url"]
    edited = [
        {"kind": "openai", "model": "m", "base_url": url, "api_key_env": "SECRET_KEY"},
        {"kind": "openai", "model": "m", "base_url": url, "api_key_env": "LAB_KEY"},
        {"endpoint": "lab", "model": "m", "base_url": url},
        {"endpoint": "custom", "model": "m", "base_url": url},
        {"endpoint": "lab", "model": "m", "api_key_env": "WRITING_RL_INTERNAL_API_TOKEN"},
        {"endpoint": "attacker", "model": "m"},
    ]
    for payload in edited:
        with pytest.raises(ValueError):
            call_judge(JudgeSpec.from_dict(payload))
        with pytest.raises(ValueError):
            make_pointwise_scorer(payload)
        with pytest.raises(ValueError):
            make_writer({**payload, "name": "w"})
    # A body field cannot redirect the call: it goes to the declared endpoint, keyed by it.
    call_judge(JudgeSpec.from_dict({"endpoint": "lab", "model": "m",
                                    "extra_body": {"base_url": url, "api_base": url}}))  # fmt: skip
    assert servers["lab"].calls[-1].headers["authorization"] == f"Bearer {LAB_KEY}"
    assert_nothing_leaked(servers)


def test_a_custom_base_url_where_allowed_never_gets_a_key(
    servers: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRITING_RL_CUSTOM_ENDPOINT_HOSTS", "127.0.0.1")
    call_judge(JudgeSpec(endpoint="custom", model="m", base_url=servers["attacker_url"]))
    [call] = servers["attacker"].calls
    assert "authorization" not in call.headers
    seen = servers["attacker"].seen()
    assert SECRET not in seen and TOKEN not in seen and LAB_KEY not in seen


@pytest.mark.parametrize("name", ["SECRET_KEY", "WRITING_RL_INTERNAL_API_TOKEN", "DATABASE_URL"])
def test_the_deployment_cannot_declare_a_service_secret_as_an_endpoint_key(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = json.dumps([{"name": "x", "base_url": "http://h/v1", "api_key_env": name}])
    with pytest.raises(ValueError, match="service's own secrets"):
        registry_from_env({"WRITING_RL_ENDPOINTS": declared})
    monkeypatch.setenv("WRITING_RL_ENDPOINTS", declared)
    from django.apps import apps

    with pytest.raises(ImproperlyConfigured, match="model endpoints"):
        apps.get_app_config("studio").ready()
