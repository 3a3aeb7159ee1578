"""The whole "prepare references" chain through a real worker: the tiny model writes and
answers, the heuristic grades, tiers are ordered and margin selection picks — each step sent
only once its inputs ended, on the first N instructions only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rl_engine.models import save_tiny_model
from tests.conftest import WorkerProcess
from tests.webapp.studio.factories import make_dataset, make_instruction
from webapp.studio.models import PipelineJob, PolicyResponse, Reference, Selection
from webapp.studio.services.prepare import references_prepare

pytestmark = pytest.mark.services


def test_a_prepared_chain_runs_to_a_selection_on_a_worker(
    celery_worker_process: WorkerProcess, tmp_path: Path
) -> None:
    model = str(save_tiny_model(tmp_path / "tiny", seed=0))
    dataset = make_dataset()
    instructions = [
        make_instruction(dataset, prompt=f"Write 12 words about {topic}.")
        for topic in ("tea", "rain", "ferries")
    ]
    writer = {"name": "tiny", "endpoint": "local", "model": model, "max_tokens": 12, "seed": 0}
    jobs = references_prepare(
        dataset=dataset, writer=writer, limit=2, strategy="margin", k=1, policy=model,
        max_new_tokens=8,
    )  # fmt: skip
    deadline = time.monotonic() + 600
    while PipelineJob.objects.filter(pk__in=[j.pk for j in jobs], finished_at=None).exists():
        assert time.monotonic() < deadline, celery_worker_process.log()[-4000:]
        time.sleep(0.3)
    rows = {j.kind: j for j in PipelineJob.objects.filter(pk__in=[j.pk for j in jobs])}
    assert {kind: job.status for kind, job in rows.items()} == {
        "generate_references": "succeeded", "score_references": "succeeded",
        "order_tiers": "succeeded", "policy_responses": "succeeded", "select": "succeeded",
    }, {kind: (job.message, job.error[-300:]) for kind, job in rows.items()}  # fmt: skip
    # Each step started only after every input had finished.
    for job in rows.values():
        for parent in job.depends_on.all():
            assert parent.finished_at <= job.started_at, (parent.kind, job.kind)
    first_two = {i.pk for i in instructions[:2]}
    assert set(Reference.objects.values_list("instruction_id", flat=True)) == first_two
    assert set(PolicyResponse.objects.values_list("instruction_id", flat=True)) == first_two
    assert not Reference.objects.filter(score=None).exists()
    assert not Reference.objects.filter(tier=None).exists()
    selection = Selection.objects.get()
    assert selection.entries.count() == 2 and selection.entries.filter(chosen=True).count() == 1
    assert rows["select"].message == "chose 1 of 2 instructions"
    assert rows["select"].result["selection"] == selection.pk
