"""Faults on a campaign's output generation (a base-policy system, the tiny random-init model,
against a reference tier): a worker killed mid-generation, and a worker stopped past the stale
time, taken over and continued. Outputs are stored a chunk at a time, so the resumed
generation writes only the missing ones, and the campaign opens with exactly the outputs and
items an uninterrupted generation gives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from rl_engine.models import save_tiny_model
from tests.faults.harness import require_services, wait_for, worker
from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.annotation.models import Campaign, Item, SystemOutput
from webapp.annotation.services.campaigns import SystemSpec, campaign_create
from webapp.annotation.services.jobs import campaign_generate
from webapp.studio.models import AuditLog, Instruction

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

INSTRUCTIONS = 24  # three chunks of eight outputs


def instructions() -> list[Instruction]:
    data = make_dataset()
    return [
        make_instruction(data, prompt=f"Describe harbour {i} at dawn.", references=[f"Gulls {i}."])
        for i in range(INSTRUCTIONS)
    ]


def campaign(policy: Path, prompts: list[Instruction], name: str, **kwargs: Any) -> Campaign:
    annotator, _ = User.objects.get_or_create(username="annotator")
    return campaign_create(
        name=name, instructions=prompts, annotators=[annotator], max_new_tokens=24,
        systems=[SystemSpec(kind="base_policy", policy=str(policy), label="tiny"),
                 SystemSpec(kind="reference", reference_tier=0, label="tier 0")],
        **kwargs,
    )  # fmt: skip


def generated(campaign: Campaign) -> int:
    return SystemOutput.objects.filter(system__campaign=campaign, system__label="tiny").count()


def final_rows(campaign: Campaign) -> dict[str, Any]:
    """What generation leaves, comparable between two campaigns on the same instructions."""
    return {
        "outputs": sorted(
            SystemOutput.objects.filter(system__campaign=campaign).values_list(
                "system__label", "instruction_id", "text"
            )
        ),
        "items": sorted(
            Item.objects.filter(campaign=campaign).values_list(
                "instruction_id", "system_a__label", "system_b__label"
            )
        ),
    }


def uninterrupted(policy: Path, prompts: list[Instruction]) -> Campaign:
    baseline = campaign(policy, prompts, "baseline", enqueue=False)
    campaign_generate(baseline.pk, worker="baseline")
    baseline.refresh_from_db()
    assert baseline.status == Campaign.Status.OPEN, baseline.error
    return baseline


def assert_like(faulted: Campaign, baseline: Campaign) -> None:
    faulted.refresh_from_db()
    assert faulted.status == Campaign.Status.OPEN, faulted.error
    assert final_rows(faulted) == final_rows(baseline)
    assert len(final_rows(faulted)["items"]) == INSTRUCTIONS


def test_a_campaign_whose_worker_is_killed_resumes_and_generates_only_what_is_missing(
    tmp_path: Path,
) -> None:
    require_services()
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    prompts = instructions()
    baseline = uninterrupted(policy, prompts)
    with worker(tmp_path, "doomed") as doomed:
        faulted = campaign(policy, prompts, "faulted")
        wait_for(lambda: generated(faulted) >= 8, "the first chunk", alive=(doomed,))
        os.kill(doomed.process.pid, signal.SIGKILL)
        doomed.process.wait(timeout=10)
    stored_before = generated(faulted)
    assert stored_before < INSTRUCTIONS
    assert Campaign.objects.get(pk=faulted.pk).status == Campaign.Status.GENERATING
    with worker(tmp_path, "rescuer", beat=True) as rescuer:
        wait_for(
            lambda: Campaign.objects.get(pk=faulted.pk).status != Campaign.Status.GENERATING,
            "the generation to finish",
            alive=(rescuer,),
        )
        log = rescuer.log()
    assert_like(faulted, baseline)
    assert faulted.epoch == 2
    assert AuditLog.objects.filter(action="campaign_requeue").count() == 1
    # The resumed generation wrote only the missing outputs.
    assert f"{INSTRUCTIONS - stored_before} outputs for tiny" in log, log[-3000:]


def test_a_stopped_campaign_worker_taken_over_writes_nothing_when_it_continues(
    tmp_path: Path,
) -> None:
    require_services()
    policy = save_tiny_model(tmp_path / "policy", seed=0)
    prompts = instructions()
    baseline = uninterrupted(policy, prompts)
    with worker(tmp_path, "sleeper") as sleeper:
        faulted = campaign(policy, prompts, "faulted")
        wait_for(lambda: generated(faulted) >= 8, "the first chunk", alive=(sleeper,))
        os.kill(sleeper.process.pid, signal.SIGSTOP)  # its second chunk is being written
        with worker(tmp_path, "rescuer", beat=True) as rescuer:
            wait_for(
                lambda: Campaign.objects.get(pk=faulted.pk).status != Campaign.Status.GENERATING,
                "the takeover to finish the generation",
                alive=(rescuer,),
            )
            after_takeover = final_rows(faulted)
            os.kill(sleeper.process.pid, signal.SIGCONT)
            wait_for(lambda: "no longer held" in sleeper.log(), "the old worker", timeout=60)
            time.sleep(2)
        log = sleeper.log()
    assert_like(faulted, baseline)
    assert final_rows(faulted) == after_takeover
    assert faulted.epoch == 2
    assert f":{rescuer.process.pid}:" in faulted.claimed_by
    assert "no longer held" in log, log[-3000:]
    # Stopped inside a fenced write, it held the row's lock until PostgreSQL ended its session.
    assert "idle in a transaction end after 10000 ms" in log, log[:3000]
