"""The demo's commands: ``demo_setup`` (SmolLM2 writes the tiered references; idempotent) and
``demo_launch`` (one demo run at a time)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.demo import DATASET_NAME, RUN_CONFIG, WRITERS
from webapp.studio.models import Reference, Run

pytestmark = pytest.mark.django_db


def launch() -> str:
    out = StringIO()
    call_command("demo_launch", stdout=out)
    return out.getvalue()


def test_launch_needs_the_demo_dataset() -> None:
    with pytest.raises(CommandError, match="demo_setup"):
        launch()


def test_launch_uses_the_deployments_default_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        '{"default_judge": "llama", "endpoints": [{"name": "llama", '
        '"base_url": "http://127.0.0.1:8080/v1", "models": ["smollm2"], '
        '"structured_output": "grammar"}]}',
    )
    dataset = make_dataset(name=DATASET_NAME)
    make_instruction(dataset, references=3)
    launch()
    assert Run.objects.get().config["judge"]["endpoint"] == "llama"


def test_launch_queues_one_run_and_then_points_at_it() -> None:
    dataset = make_dataset(name=DATASET_NAME)
    for _ in range(2):
        make_instruction(dataset, references=3)
    first = launch()
    run = Run.objects.get()
    assert f"Demo run {run.pk} queued ({RUN_CONFIG['max_steps']} GRPO steps on 2" in first
    assert run.config["judge"]["endpoint"] == "heuristic"
    assert f"already queued: /studio/runs/{run.pk}/" in launch()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, heartbeat_at=timezone.now())
    again = launch()
    assert f"already running: /studio/runs/{run.pk}/" in again and "resumes" in again
    Run.objects.filter(pk=run.pk).update(status=Run.Status.SUCCEEDED)
    assert "queued" in launch() and Run.objects.count() == 2


@pytest.mark.slow
def test_setup_writes_tiered_references_with_smollm2_once() -> None:
    out = StringIO()
    call_command("demo_setup", stdout=out)
    references = Reference.objects.filter(instruction__dataset__name=DATASET_NAME)
    instructions = {r.instruction_id for r in references}
    assert references.count() == len(WRITERS) * len(instructions) and len(instructions) >= 10
    assert {r.writer for r in references} == {w["name"] for w in WRITERS}
    assert references.filter(tier__isnull=True, score__isnull=False).count() == 0
    assert "ready" in out.getvalue()
    # A second run writes nothing new.
    out = StringIO()
    call_command("demo_setup", stdout=out)
    assert "Writing" not in out.getvalue()
    assert Reference.objects.filter(instruction__dataset__name=DATASET_NAME).count() == (
        len(WRITERS) * len(instructions)
    )


def test_setup_scores_references_by_their_round_robin_record() -> None:
    from webapp.studio.management.commands.demo_setup import judge_scores

    instruction = make_instruction(make_dataset(), references=0)
    texts = {
        "varied": "A calm grey sea under a pale sky, and gulls over the harbour wall.",
        "plain": "The sea was grey.",
        "loop": "sea sea sea sea sea sea sea sea",
    }
    for tier, (writer, text) in enumerate(texts.items()):
        Reference.objects.create(instruction=instruction, writer=writer, text=text, tier=tier)
    assert judge_scores([instruction]) == 6  # every ordered pair once
    scores = dict(instruction.references.values_list("writer", "score"))
    # 1 + 9 x the share of points (win 1, tie 1/2) over the 4 games each played.
    assert all(1.0 <= score <= 10.0 for score in scores.values())
    assert sum(scores.values()) == pytest.approx(3 * 1 + 9 * 6 / 4)  # 6 games' points shared
    assert scores["varied"] > scores["loop"]
