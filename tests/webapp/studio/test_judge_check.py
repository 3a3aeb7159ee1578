"""Judge checks in the studio: stored reports, a run refused by its judge, the override,
``manage.py judge_check`` and the pages."""

from __future__ import annotations

import json
import os
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from rl_engine.models import save_tiny_model
from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.webapp.studio.factories import make_dataset, make_instruction
from tests.webapp.studio.test_runs import tiny_config
from tests.webapp.studio_views.test_run_new import form_data
from webapp.studio.models import AuditLog, JudgeCheck, Judgment, Run, StepMetric
from webapp.studio.services.judge_check import JudgeCheckError, judge_check_run, parse_judge_spec
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim, run_create

pytestmark = pytest.mark.django_db

HEURISTIC = {"kind": "heuristic"}


def always_a(call: ChatCall) -> str:
    return "Assistant A is better. [[A]]"


@pytest.fixture(autouse=True)
def _declared_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no declared endpoint; ``declare`` adds one for the test only
    (monkeypatch restores the variable afterwards)."""
    monkeypatch.setenv("WRITING_RL_ENDPOINTS", "[]")


def declare(base_url: str) -> str:
    """The deployment declares ``fake-judge`` at ``base_url``; returns its name."""
    os.environ["WRITING_RL_ENDPOINTS"] = json.dumps([{"name": "fake-judge", "base_url": base_url}])
    return "fake-judge"


def openai_judge(server: FakeOpenAIServer) -> dict[str, Any]:
    return {"endpoint": declare(server.base_url), "model": "judge", "max_retries": 0,
            "max_reasks": 0, "hedge": False, "timeout_s": 10}  # fmt: skip


def tiered_dataset(instructions: int = 4, tiers: int = 3):
    dataset = make_dataset()
    for _ in range(instructions):
        make_instruction(dataset, references=tiers)
    return dataset


def test_the_heuristic_judge_passes_and_every_check_is_kept() -> None:
    dataset = tiered_dataset()
    first = judge_check_run(dataset=dataset, spec=parse_judge_spec(HEURISTIC), n=3)
    second = judge_check_run(dataset=dataset, spec=parse_judge_spec(HEURISTIC), n=3, seed=1)
    assert first.passed and second.passed and first.error == ""
    assert first.parse_rate == 1.0 and first.position_consistency == 1.0
    assert first.report["judgments"] == 6 and len(first.report["rows"]) == 3
    assert list(dataset.judge_checks.order_by("id")) == [first, second]


def test_a_judge_that_always_answers_a_fails_on_position_consistency() -> None:
    dataset = tiered_dataset()
    with FakeOpenAIServer(latency_s=0.0, policy=always_a) as server:
        check = judge_check_run(dataset=dataset, spec=parse_judge_spec(openai_judge(server)), n=4)
        requests = server.stats().requests
    assert requests == 8  # 4 pairs in both orders
    assert not check.passed
    assert check.parse_rate == 1.0 and check.position_consistency == 0.0
    assert check.report["a_preference_rate"] == 1.0
    assert check.report["prompt_tokens"] > 0  # the fake server reports usage


def test_a_judge_that_cannot_be_reached_fails_with_the_error() -> None:
    dataset = tiered_dataset()
    spec = {"endpoint": declare("http://127.0.0.1:9/v1"), "model": "judge", "max_retries": 0,
            "max_reasks": 0, "timeout_s": 2}  # fmt: skip
    check = judge_check_run(dataset=dataset, spec=parse_judge_spec(spec), n=2)
    assert not check.passed and check.parse_rate == 0.0
    assert "parse rate 0%" in check.report["reasons"][0]
    assert check.report["errors"]  # the transport's reason, not a silent zero


def test_a_dataset_without_two_tiers_is_refused_and_nothing_is_stored() -> None:
    dataset = make_dataset()
    make_instruction(dataset, references=1)
    with pytest.raises(JudgeCheckError, match="no instruction with references in two"):
        judge_check_run(dataset=dataset, spec=parse_judge_spec(HEURISTIC))
    assert not JudgeCheck.objects.exists()
    with pytest.raises(JudgeCheckError, match="unknown JudgeSpec field"):
        parse_judge_spec({"kind": "heuristic", "colour": "red"})


# -- before a run --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("policy") / "tiny", seed=0)


def launch(
    settings: Any, tmp_path: Path, policy: Path, judge: dict[str, Any], **changes: Any
) -> Run:
    settings.WRITING_RL_RUNS_DIR = tmp_path
    dataset = tiered_dataset(instructions=2, tiers=2)
    config = tiny_config(policy, judge=judge, judge_check_pairs=2, **changes)
    run = run_create(name="checked", dataset=dataset, config=config, enqueue=False)
    assert run_claim(run.pk, worker="me")
    run_execute(run.pk, worker="me")
    run.refresh_from_db()
    return run


def test_a_run_with_a_position_biased_judge_refuses_to_start_with_the_report(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=always_a) as server:
        run = launch(settings, tmp_path, tiny_policy, openai_judge(server))
        requests = server.stats().requests
    (check,) = run.judge_checks.all()
    assert run.status == Run.Status.FAILED
    assert run.error.startswith(f"refused by the judge check (report #{check.pk}): ")
    assert "position consistency 0% is under the minimum 60%" in run.error
    assert requests == 4  # the check's 2 pairs x 2 orders; no rollout was judged
    assert not Judgment.objects.filter(run=run).exists()
    assert not StepMetric.objects.filter(run=run).exists()


def test_an_overridden_check_is_audited_and_the_run_trains(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    with FakeOpenAIServer(latency_s=0.0, policy=always_a) as server:
        run = launch(settings, tmp_path, tiny_policy, openai_judge(server),
                     judge_check_override=True, max_steps=1)  # fmt: skip
    (check,) = run.judge_checks.all()
    assert not check.passed
    assert run.status == Run.Status.SUCCEEDED, run.error
    actions = dict(AuditLog.objects.filter(run=run).values_list("action", "details"))
    assert actions["judge_check_override"] == {"judge_check_pairs": 2}
    assert actions["judge_check_overridden"]["judge_check"] == check.pk
    assert "position consistency" in actions["judge_check_overridden"]["reason"]


def test_a_run_with_the_heuristic_judge_passes_its_check_and_trains(
    settings: Any, tmp_path: Path, tiny_policy: Path
) -> None:
    run = launch(settings, tmp_path, tiny_policy, HEURISTIC, max_steps=1)
    (check,) = run.judge_checks.all()
    assert check.passed and run.status == Run.Status.SUCCEEDED, run.error


# -- manage.py judge_check -----------------------------------------------------------------


def test_the_command_checks_a_judge_and_exits_by_the_outcome(tmp_path: Path) -> None:
    dataset = tiered_dataset()
    out = StringIO()
    call_command("judge_check", "--dataset", dataset.name, "--judge", json.dumps(HEURISTIC),
                 "--pairs", "2", stdout=out)  # fmt: skip
    assert "parsed 100%, position-consistent 100%" in out.getvalue()
    assert "passed" in out.getvalue()
    with FakeOpenAIServer(latency_s=0.0, policy=always_a) as server:
        spec_file = tmp_path / "judge.json"
        spec_file.write_text(json.dumps(openai_judge(server)))
        with pytest.raises(CommandError) as failed:
            call_command("judge_check", "--dataset", str(dataset.pk), "--judge", f"@{spec_file}",
                         "--pairs", "2", stdout=StringIO())  # fmt: skip
    assert failed.value.returncode == 1
    assert JudgeCheck.objects.filter(dataset=dataset).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "nope", "--judge", '{"kind": "heuristic"}'], "no dataset named"),
        (["--dataset", "{dataset}", "--judge", "{not json"], "--judge is not JSON"),
        (["--dataset", "{dataset}", "--judge", '{"kind": "oracle"}'], "unknown kind 'oracle'"),
        (["--dataset", "{dataset}", "--judge", '{"kind": "heuristic"}', "--pairs", "0"], "--pairs"),
        (
            [
                "--dataset",
                "{dataset}",
                "--judge",
                '{"kind": "heuristic"}',
                "--min-consistency",
                "2",
            ],
            "not a share",
        ),
        (["--run", "999999"], "no run with id"),
        (["--judge", '{"kind": "heuristic"}'], "give --dataset"),
    ],
)
def test_the_command_exits_2_on_bad_input_and_stores_nothing(args: list[str], message: str) -> None:
    dataset = tiered_dataset(instructions=1)
    args = [a.replace("{dataset}", dataset.name) for a in args]
    with pytest.raises(CommandError, match=message) as error:
        call_command("judge_check", *args, stdout=StringIO())
    assert error.value.returncode == 2
    assert not JudgeCheck.objects.exists()


# -- pages ---------------------------------------------------------------------------------


@pytest.fixture
def staff_client(client: Client) -> Client:
    from django.contrib.auth.models import User

    from webapp.studio.roles import grant_researcher

    client.force_login(grant_researcher(User.objects.create_user("res", password="pw-res-123")))
    client.get("/studio/")
    return client


def test_the_dataset_page_checks_a_judge_and_shows_the_report(staff_client: Client) -> None:
    dataset = tiered_dataset()
    page = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "Check this judge" in page and "No judge check on this dataset yet." in page
    response = staff_client.post(
        f"/studio/datasets/{dataset.pk}/judge-check/",
        {"judge": json.dumps(HEURISTIC), "pairs": 3, "min_parse_rate": 0.8,
         "min_consistency": 0.6},
    )  # fmt: skip
    check = JudgeCheck.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/studio/judge-checks/{check.pk}/"
    detail = staff_client.get(response["Location"]).content.decode()
    assert 'data-passed="true"' in detail and "data-parse-rate>100%" in detail
    assert detail.count("<tr>") == 4  # header + 3 pairs
    page = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert f"Judge check #{check.pk}" in page


def test_the_dataset_page_names_a_bad_judge_spec(staff_client: Client) -> None:
    dataset = tiered_dataset()
    response = staff_client.post(
        f"/studio/datasets/{dataset.pk}/judge-check/",
        {"judge": '{"kind": "heuristic", "colour": 1}', "pairs": 3, "min_parse_rate": 0.8,
         "min_consistency": 0.6},
    )  # fmt: skip
    assert response.status_code == 400
    assert "unknown JudgeSpec field(s): colour" in response.content.decode()
    assert not JudgeCheck.objects.exists()


def test_the_run_page_shows_the_check_that_refused_the_run(staff_client: Client) -> None:
    dataset = tiered_dataset()
    run = Run.objects.create(name="r", dataset=dataset, status=Run.Status.FAILED)
    check = judge_check_run(dataset=dataset, spec=parse_judge_spec(HEURISTIC), n=2, run=run)
    page = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert f'data-judge-check="{check.pk}"' in page and "same winner both orders" in page


def test_the_new_run_form_checks_its_judge_without_launching(staff_client: Client) -> None:
    dataset = tiered_dataset()
    data = form_data(dataset.pk, judge_check_pairs=3, check_judge="1")
    response = staff_client.post("/studio/runs/new/", data)
    page = response.content.decode()
    assert response.status_code == 200, page
    check = JudgeCheck.objects.get()
    assert check.run is None and check.passed and check.report["pairs"] == 3
    assert f'data-judge-check="{check.pk}"' in page and "Launch run" in page
    assert not Run.objects.exists()
