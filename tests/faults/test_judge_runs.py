"""Faults on an LLM judge run over a campaign (the judge an OpenAI-compatible server): a
worker killed mid-run, and a worker stopped past the stale time, taken over and continued.
Votes are stored chunk by chunk, so the resumed run pays only for the missing calls, and the
final votes are an uninterrupted run's: one per item and order."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from rl_engine.testing import ChatCall, FakeOpenAIServer
from tests.faults.harness import require_services, wait_for, worker
from tests.webapp.annotation.factories import make_campaign
from webapp.annotation.models import Campaign, JudgeRun, JudgeVote
from webapp.annotation.services.judge_runs import judge_run_create
from webapp.studio.models import AuditLog

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def verdict(call: ChatCall) -> str:
    return "The first text is clearer. [[A]]"


def campaign() -> Campaign:
    annotators = [User.objects.create_user(f"ann{i}") for i in range(2)]
    return make_campaign(annotators, instructions=6, systems=3)  # 18 items, 36 calls


def declare(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> dict[str, str]:
    """The deployment declares the judge's endpoint (set before a worker starts: it inherits
    the environment); returns the judge spec that names it."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS", json.dumps([{"name": "fake", "base_url": server.base_url}])
    )
    return {"endpoint": "fake", "model": "m"}


def votes(judge_run: JudgeRun) -> list[tuple[int, str, str]]:
    return sorted(
        JudgeVote.objects.filter(judge_run=judge_run).values_list("item_id", "order", "verdict")
    )


def assert_like_uninterrupted(judge_run: JudgeRun, voted: Campaign) -> None:
    judge_run.refresh_from_db()
    assert judge_run.status == JudgeRun.Status.SUCCEEDED, judge_run.error
    assert judge_run.epoch == 2
    items = sorted(voted.items.values_list("id", flat=True))
    assert votes(judge_run) == sorted(
        (item, order, "A") for item in items for order in ("ab", "ba")
    )


def test_a_judge_run_whose_worker_is_killed_resumes_paying_only_for_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    voted = campaign()
    with FakeOpenAIServer(latency_s=0.5, policy=verdict) as server:
        spec = declare(monkeypatch, server)
        with worker(tmp_path, "doomed") as doomed:
            judge_run = judge_run_create(campaign=voted, spec=spec)
            wait_for(lambda: len(votes(judge_run)) >= 16, "the first chunk", alive=(doomed,))
            os.kill(doomed.process.pid, signal.SIGKILL)
            doomed.process.wait(timeout=10)
        stored_before = len(votes(judge_run))
        calls_before = server.stats().requests
        with worker(tmp_path, "rescuer", beat=True) as rescuer:
            wait_for(
                lambda: JudgeRun.objects.get(pk=judge_run.pk).status != "running",
                "the judge run to finish",
                alive=(rescuer,),
            )
        resumed_calls = server.stats().requests - calls_before
    assert_like_uninterrupted(judge_run, voted)
    assert resumed_calls == 36 - stored_before  # a resume pays only for the missing votes
    assert AuditLog.objects.filter(action="judge_run_requeue").count() == 1


def test_a_stopped_judge_worker_taken_over_stores_nothing_when_it_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_services()
    voted = campaign()
    server = FakeOpenAIServer(latency_s=1.0, policy=verdict)
    with server:
        spec = declare(monkeypatch, server)
        with worker(tmp_path, "sleeper") as sleeper:
            judge_run = judge_run_create(campaign=voted, spec=spec)
            wait_for(lambda: len(votes(judge_run)) >= 16, "the first chunk", alive=(sleeper,))
            os.kill(sleeper.process.pid, signal.SIGSTOP)  # its second chunk is in flight
            with worker(tmp_path, "rescuer", beat=True) as rescuer:
                wait_for(
                    lambda: JudgeRun.objects.get(pk=judge_run.pk).status != "running",
                    "the takeover to finish the judge run",
                    alive=(rescuer,),
                )
                judge_run.refresh_from_db()
                finished = (judge_run.finished_at, votes(judge_run))
                os.kill(sleeper.process.pid, signal.SIGCONT)
                wait_for(lambda: "no longer held" in sleeper.log(), "the old worker", timeout=60)
                time.sleep(2)
    assert_like_uninterrupted(judge_run, voted)
    assert (judge_run.finished_at, votes(judge_run)) == finished
