"""Every background job re-checks what its stored config may reach when it runs.

A researcher (or anyone with write access to the database) edits a stored config after the
form checked it: a model path outside the model roots, an endpoint name the deployment does
not declare, a base URL or key variable smuggled into the stored spec. For each kind of job
(training run, evaluation — both phases —, campaign output generation, the three pipeline
jobs, judge run, ablation comparison, judge check) the job must fail with the reason, make
no request (neither to the declared endpoint nor to the smuggled URL, whose fake server
records every hit), and write nothing of its work.

The edits are made with ``QuerySet.update``: no model or form validation runs, as with a
hand-written SQL ``UPDATE``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import User

from rl_engine.judging import JudgeSpec
from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.webapp.annotation.factories import make_campaign
from tests.webapp.annotation.factories import make_dataset as make_annotation_dataset
from tests.webapp.studio_views.factories import make_dataset
from webapp.annotation.models import Campaign, JudgeRun, JudgeVote, System, SystemOutput
from webapp.annotation.services import jobs as annotation_jobs
from webapp.annotation.services.campaigns import SystemSpec, campaign_create
from webapp.annotation.services.judge_runs import judge_run_create
from webapp.evals.models import AblationCell, AblationGrid, EvalItemResult, EvalRun
from webapp.evals.services.ablation_study import grid_compare
from webapp.evals.services.ablations import ablation_grid_advance
from webapp.evals.services.eval_runs import eval_run_create
from webapp.evals.services.execution import eval_run_generate, eval_run_judge
from webapp.studio.models import (
    Checkpoint,
    JudgeCheck,
    Judgment,
    PipelineJob,
    PolicyResponse,
    Reference,
    Run,
)
from webapp.studio.services.judge_check import judge_check_run
from webapp.studio.services.pipeline import job_create, job_run
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create

pytestmark = pytest.mark.django_db

SECRET = "django-secret-probe-use-time"
LAB_KEY = "lab-key-probe-use-time"
POLICY = "smollm2-135m-instruct"  # a known model name (never loaded here: every job refuses)
LAB = {"endpoint": "lab", "model": "m"}


class Recorder:
    def __init__(self) -> None:
        self.calls: list[ChatCall] = []

    def __call__(self, call: ChatCall) -> str:
        self.calls.append(call)
        return '{"score": 7, "reason": "fine"}' if '"score"' in call.system else "Text. [[A]]"


@dataclass
class Servers:
    lab: Recorder
    attacker: Recorder
    attacker_server: FakeOpenAIServer
    attacker_url: str

    def assert_untouched(self) -> None:
        """No request reached the smuggled URL, nor the declared endpoint (the job refused
        before its first call)."""
        assert self.attacker.calls == []
        assert self.attacker_server.stats().requests == 0
        assert self.lab.calls == []


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Any) -> Iterator[Servers]:
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    settings.WRITING_RL_MODEL_ROOTS = [tmp_path / "models"]
    lab, attacker = Recorder(), Recorder()
    with (
        FakeOpenAIServer(latency_s=0.0, policy=lab) as lab_server,
        FakeOpenAIServer(latency_s=0.0, policy=attacker) as attacker_server,
    ):
        monkeypatch.setenv("SECRET_KEY", SECRET)
        monkeypatch.setenv("LAB_KEY", LAB_KEY)
        monkeypatch.delenv("WRITING_RL_CUSTOM_ENDPOINT_HOSTS", raising=False)
        monkeypatch.setenv(
            "WRITING_RL_ENDPOINTS",
            json.dumps(
                [{"name": "lab", "base_url": lab_server.base_url, "models": ["m"],
                  "api_key_env": "LAB_KEY"}]
            ),
        )  # fmt: skip
        yield Servers(lab, attacker, attacker_server, attacker_server.base_url)


# The edits of a stored endpoint spec, each with a fragment of the reason the job must give.
# ``url`` stands for the attacker's server.
Edit = Callable[[str], dict[str, Any]]
ENDPOINT_EDITS: list[tuple[str, Edit, str]] = [
    ("path outside the roots", lambda url: {"endpoint": "local", "model": "/etc"},
     "model roots"),
    ("unknown endpoint", lambda url: {"endpoint": "attacker", "model": "m"},
     "unknown endpoint 'attacker'"),
    ("base_url smuggled", lambda url: {**LAB, "base_url": url}, "has its own base URL"),
    ("key variable smuggled", lambda url: {**LAB, "api_key_env": "SECRET_KEY"},
     "api_key_env"),
    ("old-style URL and key", lambda url: {"kind": "openai", "model": "m", "base_url": url,
                                           "api_key_env": "SECRET_KEY"},
     "not a declared endpoint"),
    ("custom endpoint not allowed", lambda url: {"endpoint": "custom", "model": "m",
                                                 "base_url": url},
     "unknown endpoint 'custom'"),
]  # fmt: skip
JUDGE_ONLY_EDITS: list[tuple[str, Edit, str]] = [
    ("cache outside the runs directory",
     lambda url: {"endpoint": "heuristic", "cache_path": "/tmp/use-time-probe.sqlite"},
     "under the runs directory"),
]  # fmt: skip
JUDGE_EDITS = ENDPOINT_EDITS + JUDGE_ONLY_EDITS
EDIT_IDS = [e[0] for e in ENDPOINT_EDITS]
JUDGE_IDS = [e[0] for e in JUDGE_EDITS]


def writer_edit(edit: Edit, url: str) -> dict[str, Any]:
    return {"name": "w", "max_tokens": 16, **edit(url)}


# -- training runs -----------------------------------------------------------------------------


def _run(servers: Servers) -> Run:
    dataset = make_dataset(instructions=2)
    return run_create(
        name="r", dataset=dataset, enqueue=False,
        config={"policy": POLICY, "judge": LAB, "max_steps": 2, "judge_check_pairs": 0},
    )  # fmt: skip


def _run_refused(run: Run, servers: Servers, reason: str) -> None:
    assert run_claim(run.pk, worker="w") is not None
    outcome = run_execute(run.pk, worker="w")
    run.refresh_from_db()
    assert outcome["status"] == Run.Status.FAILED and run.status == Run.Status.FAILED
    assert reason in run.error, run.error
    assert run.current_step == 0
    assert not Checkpoint.objects.filter(run=run).exists()
    assert not Judgment.objects.filter(run=run).exists()
    servers.assert_untouched()


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_a_run_whose_stored_judge_was_edited_fails_untrained(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    run = _run(servers)
    Run.objects.filter(pk=run.pk).update(config={**run.config, "judge": edit(servers.attacker_url)})
    _run_refused(run, servers, reason)


def test_a_run_whose_stored_policy_was_edited_fails_untrained(servers: Servers) -> None:
    run = _run(servers)
    Run.objects.filter(pk=run.pk).update(config={**run.config, "policy": "/etc"})
    _run_refused(run, servers, "model roots")


# -- evaluations -------------------------------------------------------------------------------


def _evaluation(system: dict[str, Any]) -> EvalRun:
    dataset = make_dataset(instructions=2)
    dataset.instructions.update(split="eval")
    return eval_run_create(
        benchmark="longbench_write", dataset=dataset, judge=LAB, enqueue=False,
        settings={"max_new_tokens": 8}, **system,
    )  # fmt: skip


def _evaluation_refused(eval_run: EvalRun, servers: Servers, reason: str) -> None:
    eval_run.refresh_from_db()
    assert eval_run.status == EvalRun.Status.FAILED
    assert reason in eval_run.error, eval_run.error
    assert not EvalItemResult.objects.filter(eval_run=eval_run, judged=True).exists()
    servers.assert_untouched()


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_an_evaluation_whose_stored_judge_was_edited_generates_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    # A base model that would be loaded: the refusal comes before it (and before any write).
    eval_run = _evaluation({"system_kind": "base_model", "base_model": POLICY})
    EvalRun.objects.filter(pk=eval_run.pk).update(judge=edit(servers.attacker_url))
    assert eval_run_generate(eval_run.pk, worker="w") is False
    _evaluation_refused(eval_run, servers, reason)
    assert not EvalItemResult.objects.filter(eval_run=eval_run).exists()


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_an_evaluation_edited_between_its_phases_judges_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    eval_run = _evaluation({"system_kind": "reference_tier", "reference_tier": 2})
    assert eval_run_generate(eval_run.pk, worker="w") is True  # references: no model
    generated = EvalItemResult.objects.filter(eval_run=eval_run).count()
    assert generated == 2
    EvalRun.objects.filter(pk=eval_run.pk).update(judge=edit(servers.attacker_url))
    assert eval_run_judge(eval_run.pk, worker="w") is False
    _evaluation_refused(eval_run, servers, reason)


@pytest.mark.parametrize("field", ["base_model", "checkpoint"])
def test_an_evaluation_whose_stored_model_was_edited_generates_nothing(
    servers: Servers, field: str
) -> None:
    eval_run = _evaluation({"system_kind": "base_model", "base_model": POLICY})
    if field == "base_model":
        EvalRun.objects.filter(pk=eval_run.pk).update(base_model="/etc")
    else:
        run = Run.objects.create(name="trained", dataset=eval_run.dataset, config={})
        checkpoint = Checkpoint.objects.create(run=run, step=1, path="/etc")
        EvalRun.objects.filter(pk=eval_run.pk).update(
            system_kind="checkpoint", checkpoint=checkpoint
        )
    assert eval_run_generate(eval_run.pk, worker="w") is False
    _evaluation_refused(eval_run, servers, "model roots")
    assert f"{field}:" in EvalRun.objects.get(pk=eval_run.pk).error
    assert not EvalItemResult.objects.filter(eval_run=eval_run).exists()


# -- campaign output generation ----------------------------------------------------------------


def test_a_campaign_whose_stored_policy_was_edited_generates_nothing(servers: Servers) -> None:
    dataset = make_annotation_dataset(instructions=2, tiers=1, name="gen")
    annotators = [User.objects.create_user(f"g{i}") for i in range(2)]
    campaign = campaign_create(
        name="generated", instructions=list(dataset.instructions.order_by("pk")),
        systems=[SystemSpec(kind="base_policy", policy=POLICY, label="base"),
                 SystemSpec(kind="base_policy", policy=POLICY, label="other"),
                 SystemSpec(kind="reference", reference_tier=0, label="ref")],
        annotators=annotators, overlap=1, enqueue=False,
    )  # fmt: skip
    assert campaign.status == Campaign.Status.GENERATING
    # The first system is untouched (it would load a model): the edited second one is
    # refused before anything is generated.
    System.objects.filter(campaign=campaign, label="other").update(policy="/etc")
    with pytest.raises(ValueError, match="model roots"):
        annotation_jobs.campaign_generate(campaign.pk, worker="w")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert "'other' policy" in campaign.error and "model roots" in campaign.error
    assert not SystemOutput.objects.filter(system__campaign=campaign, system__kind="base_policy")
    assert not campaign.items.exists()
    servers.assert_untouched()


# -- judge runs --------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_a_judge_run_whose_stored_spec_was_edited_judges_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    annotators = [User.objects.create_user(f"a{i}") for i in range(2)]
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    judge_run = judge_run_create(campaign=campaign, spec=LAB, enqueue=False)
    JudgeRun.objects.filter(pk=judge_run.pk).update(spec=edit(servers.attacker_url))
    with pytest.raises(ValueError):
        annotation_jobs.judge_run_execute(judge_run.pk, worker="w")
    judge_run.refresh_from_db()
    assert judge_run.status == JudgeRun.Status.FAILED
    assert reason in judge_run.error, judge_run.error
    assert not JudgeVote.objects.filter(judge_run=judge_run).exists()
    servers.assert_untouched()


# -- pipeline jobs -----------------------------------------------------------------------------


def _job_refused(job: PipelineJob, servers: Servers, reason: str) -> None:
    outcome = job_run(job.pk, worker="w")
    job.refresh_from_db()
    assert outcome["status"] == "failed" and job.status == PipelineJob.Status.FAILED
    assert reason in job.error, job.error
    servers.assert_untouched()


@pytest.mark.parametrize(("label", "edit", "reason"), ENDPOINT_EDITS, ids=EDIT_IDS)
def test_a_reference_job_whose_stored_writer_was_edited_writes_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    dataset = make_dataset(instructions=2, references=0)
    writers = [{"name": "lab-writer", "max_tokens": 16, **LAB}]
    job = job_create(kind="generate_references", dataset=dataset, params={"writers": writers},
                     enqueue=False)  # fmt: skip
    # The first (declared) writer would write: the edited second one is refused before it.
    edited = [*writers, writer_edit(edit, servers.attacker_url)]
    PipelineJob.objects.filter(pk=job.pk).update(params={"writers": edited})
    _job_refused(job, servers, reason)
    assert not Reference.objects.filter(instruction__dataset=dataset).exists()


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_a_scoring_job_whose_stored_scorer_was_edited_scores_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    dataset = make_dataset(instructions=2)
    Reference.objects.filter(instruction__dataset=dataset).update(score=None)
    job = job_create(kind="score_references", dataset=dataset, params={"scorer": LAB},
                     enqueue=False)  # fmt: skip
    PipelineJob.objects.filter(pk=job.pk).update(params={"scorer": edit(servers.attacker_url)})
    _job_refused(job, servers, reason)
    assert not Reference.objects.filter(instruction__dataset=dataset, score__isnull=False)


@pytest.mark.parametrize(
    ("label", "edit", "reason"),
    [*JUDGE_EDITS, ("policy outside the roots", lambda url: {"policy": "/etc"}, "model roots")],
    ids=[*JUDGE_IDS, "policy outside the roots"],
)
def test_a_policy_answers_job_whose_stored_config_was_edited_answers_nothing(
    servers: Servers, label: str, edit: Edit, reason: str
) -> None:
    dataset = make_dataset(instructions=2)
    params = {"policy": POLICY, "scorer": LAB, "max_new_tokens": 8}
    job = job_create(kind="policy_responses", dataset=dataset, params=params, enqueue=False)
    changed = edit(servers.attacker_url)
    edited = {**params, **changed} if "policy" in changed else {**params, "scorer": changed}
    PipelineJob.objects.filter(pk=job.pk).update(params=edited)
    _job_refused(job, servers, reason)
    assert not PolicyResponse.objects.filter(instruction__dataset=dataset).exists()


# -- ablation comparisons ----------------------------------------------------------------------


@pytest.mark.parametrize(("label", "edit", "reason"), JUDGE_EDITS, ids=JUDGE_IDS)
def test_an_ablation_whose_stored_judge_was_edited_compares_nothing(
    servers: Servers, label: str, edit: Edit, reason: str, client: Any
) -> None:
    dataset = make_dataset(instructions=2)
    instructions = list(dataset.instructions.order_by("pk"))

    def evaluated(name: str) -> EvalRun:
        eval_run = EvalRun.objects.create(
            name=name, benchmark="longbench_write", system_kind="base_model",
            base_model=POLICY, status=EvalRun.Status.SUCCEEDED, judge=LAB, dataset=dataset,
        )  # fmt: skip
        for instruction in instructions:
            EvalItemResult.objects.create(
                eval_run=eval_run, item_id=str(instruction.pk), instruction=instruction,
                response=f"{name} answer", judged=True, score=50.0,
            )  # fmt: skip
        return eval_run

    grid = AblationGrid.objects.create(
        name="grid", group="grid-probe", dataset=dataset, eval_benchmark="longbench_write",
        eval_judge=LAB, base_eval_run=evaluated("base"),
    )  # fmt: skip
    run = Run.objects.create(name="cell", dataset=dataset, config={}, group=grid.group)
    cell = AblationCell.objects.create(
        grid=grid, selection="full", reward="pairwise", curriculum="dynamic", run=run,
        eval_run=evaluated("cell"),
    )  # fmt: skip
    AblationGrid.objects.filter(pk=grid.pk).update(eval_judge=edit(servers.attacker_url))
    grid.refresh_from_db()
    assert grid_compare(grid) == 0
    cell.refresh_from_db()
    assert set(cell.comparison) == {"refused"}  # no win rate, no counts: only the reason
    assert reason in cell.comparison["refused"]
    servers.assert_untouched()
    # The grid's page says why nothing was compared.
    admin = User.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(admin)
    page = client.get(f"/evals/ablations/{grid.pk}/").content.decode()
    assert 'data-testid="comparison-refused"' in page


def test_an_ablation_whose_evaluations_are_refused_says_so_instead_of_waiting(
    servers: Servers, client: Any
) -> None:
    """A grid whose stored judge was edited cannot create its held-out evaluations: every cell
    says why (the page shows it), rather than the grid waiting for evaluations never made."""
    dataset = make_dataset(instructions=2)
    grid = AblationGrid.objects.create(
        name="grid", group="grid-refused-evals", dataset=dataset, eval_benchmark="longbench_write",
        eval_judge={"endpoint": "attacker", "model": "m"},
    )  # fmt: skip
    run = Run.objects.create(
        name="cell", dataset=dataset, config={}, group=grid.group, status=Run.Status.SUCCEEDED
    )
    cell = AblationCell.objects.create(
        grid=grid, selection="full", reward="pairwise", curriculum="dynamic", run=run
    )
    progress = ablation_grid_advance(grid.pk, enqueue=False, compare=False)
    assert progress.created == 0 and not progress.base_created
    assert not EvalRun.objects.exists()
    cell.refresh_from_db()
    assert "held-out evaluation was refused" in cell.comparison["refused"]
    assert "unknown endpoint 'attacker'" in cell.comparison["refused"]
    servers.assert_untouched()
    admin = User.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(admin)
    page = client.get(f"/evals/ablations/{grid.pk}/").content.decode()
    assert 'data-testid="comparison-refused"' in page


# -- judge checks --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (JudgeSpec(endpoint="local", model="/etc"), "model roots"),
        (JudgeSpec(endpoint="attacker", model="m"), "unknown endpoint 'attacker'"),
        (JudgeSpec(endpoint="lab", model="m", base_url="http://127.0.0.1:9/v1"),
         "has its own base URL"),
        (JudgeSpec(endpoint="heuristic", cache_path="/tmp/use-time-probe.sqlite"),
         "under the runs directory"),
    ],
    ids=["path", "unknown", "base_url", "cache"],
)  # fmt: skip
def test_a_judge_check_of_a_refused_spec_fails_without_a_call(
    servers: Servers, spec: JudgeSpec, reason: str
) -> None:
    dataset = make_dataset(instructions=2)
    check = judge_check_run(dataset=dataset, spec=spec, n=2)
    assert check.passed is False and reason in check.error, check.error
    assert check.report in ({}, None)
    assert JudgeCheck.objects.count() == 1
    servers.assert_untouched()
