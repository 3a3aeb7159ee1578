"""What a waiting job waits for: its queue, its place, the job ahead, and whether a live worker
serves the queue (``webapp.ops.queue_wait``, shown by ``{% queue_wait %}``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tests.conftest import celery_worker
from webapp.annotation.models import Campaign, JudgeRun
from webapp.evals.models import EvalRun
from webapp.ops.health import ServedQueues, served_queues
from webapp.ops.queue_wait import queue_state, queue_wait
from webapp.studio.models import Dataset, PipelineJob, Run
from webapp.studio.roles import grant_researcher
from workers.queues import QueueName

GPU_SERVED = ServedQueues(True, {"gpu": ["w1@host"]})


@pytest.fixture(autouse=True)
def _fresh_worker_check(settings: Any) -> None:
    settings.WRITING_RL_HEALTHZ_PING_TIMEOUT_S = 1.0
    settings.WRITING_RL_HEALTHZ_CACHE_S = 0  # each test sees its own workers


def _sent(minutes_ago: int) -> Any:
    return timezone.now() - timedelta(minutes=minutes_ago)


def _eval(name: str, **fields: Any) -> EvalRun:
    return EvalRun.objects.create(
        name=name, benchmark="writingbench", system_kind=EvalRun.SystemKind.BASE_MODEL,
        base_model="tiny", **fields,
    )  # fmt: skip


@pytest.mark.django_db
def test_waiting_jobs_of_one_queue_line_up_across_kinds_in_the_order_they_were_sent() -> None:
    dataset = Dataset.objects.create(name="queue-order")
    running = Run.objects.create(
        name="training", dataset=dataset, status=Run.Status.RUNNING, claimed_by="w1:1:t",
        started_at=_sent(30), enqueued_at=_sent(31),
    )  # fmt: skip
    # Created later but sent earlier than the run below: sending order decides.
    generation = _eval("gen", enqueued_at=_sent(20))
    queued_run = Run.objects.create(name="second", dataset=dataset, enqueued_at=_sent(10))
    campaign = Campaign.objects.create(name="c", enqueued_at=_sent(5))  # generating, unheld
    writing = PipelineJob.objects.create(
        kind=PipelineJob.Kind.GENERATE_REFERENCES, dataset=dataset, enqueued_at=_sent(1)
    )
    # Other queues do not count.
    PipelineJob.objects.create(
        kind=PipelineJob.Kind.SCORE_REFERENCES, dataset=dataset, enqueued_at=_sent(40)
    )

    state = queue_state(QueueName.GPU)
    assert [w.label for w in state.waiting] == [
        f"evaluation #{generation.pk} “gen” (generation)",
        f"run #{queued_run.pk} “second”",
        f"campaign #{campaign.pk} “c” (output generation)",
        f"job #{writing.pk} generate references (dataset {dataset.pk})",
    ]
    assert [w.pk for w in state.running] == [running.pk]

    first = queue_wait(generation, served=GPU_SERVED)
    assert first is not None and first.queue == QueueName.GPU
    assert (first.position, first.waiting_count) == (1, 4)
    assert first.ahead is not None and first.ahead.running
    assert first.ahead.url == f"/studio/runs/{running.pk}/"
    assert first.served is True and first.workers == ["w1@host"]

    second = queue_wait(queued_run, served=GPU_SERVED)
    assert second is not None and second.position == 2
    assert second.ahead is not None and second.ahead.pk == generation.pk
    assert second.ahead.url == f"/evals/{generation.pk}/" and not second.ahead.running

    last = queue_wait(writing, served=GPU_SERVED)
    assert last is not None and last.position == 4
    assert last.ahead is not None and last.ahead.pk == campaign.pk
    assert last.ahead.url == f"/annotate/campaigns/{campaign.pk}/"


@pytest.mark.django_db
def test_the_judge_and_default_queues_have_their_own_lines() -> None:
    dataset = Dataset.objects.create(name="queue-judge")
    grading = PipelineJob.objects.create(
        kind=PipelineJob.Kind.SCORE_REFERENCES, dataset=dataset, enqueued_at=_sent(9)
    )
    # An evaluation handed from generation to judging waits on the judge queue, unheld.
    judging = _eval("judged", status=EvalRun.Status.JUDGING, enqueued_at=_sent(6))
    campaign = Campaign.objects.create(name="open", status=Campaign.Status.OPEN)
    judge_run = JudgeRun.objects.create(campaign=campaign, judge_name="j", spec={})
    ordering = PipelineJob.objects.create(kind=PipelineJob.Kind.ORDER_TIERS, dataset=dataset)

    served = ServedQueues(True, {"gpu": ["w1@host"]})
    wait = queue_wait(judge_run, served=served)
    assert wait is not None and wait.queue == QueueName.JUDGE
    assert (wait.position, wait.waiting_count) == (3, 3)
    assert wait.ahead is not None and wait.ahead.pk == judging.pk
    assert wait.served is False  # only a gpu worker is live
    judged = queue_wait(judging, served=served)
    assert judged is not None and judged.ahead is not None and judged.ahead.pk == grading.pk
    assert judged.ahead.url == f"/studio/datasets/{dataset.pk}/#job-{grading.pk}"

    alone = queue_wait(ordering, served=ServedQueues(False, {}, "the broker is unreachable"))
    assert alone is not None and alone.queue == QueueName.DEFAULT
    assert (alone.position, alone.ahead, alone.served) == (1, None, None)

    # Held, finished or failed rows wait for nothing.
    judging.claimed_by = "w2:2:t"
    assert queue_wait(judging, served=served) is None
    grading.status = PipelineJob.Status.SUCCEEDED
    assert queue_wait(grading, served=served) is None
    assert queue_wait(campaign, served=served) is None


@pytest.mark.django_db
def test_the_pages_say_plainly_when_no_worker_serves_the_queue(client: Client) -> None:
    client.force_login(grant_researcher(User.objects.create_user("q", password="pw-q-12345")))
    dataset = Dataset.objects.create(name="queue-page")
    run = Run.objects.create(name="waits", dataset=dataset, enqueued_at=_sent(1))
    job = PipelineJob.objects.create(kind=PipelineJob.Kind.ORDER_TIERS, dataset=dataset)
    eval_run = _eval("waits")
    campaign = Campaign.objects.create(name="waits")
    judge_run = JudgeRun.objects.create(campaign=campaign, judge_name="j", spec={})

    pages = {
        f"/studio/runs/{run.pk}/": "gpu",
        f"/studio/datasets/{dataset.pk}/": "default",
        f"/evals/{eval_run.pk}/": "gpu",
        f"/annotate/campaigns/{campaign.pk}/": "gpu",
        f"/annotate/campaigns/{campaign.pk}/results/": "judge",
    }
    for url, queue in pages.items():
        page = client.get(url).content.decode()
        assert f'data-queue="{queue}"' in page, url
        assert f"No worker is serving the {queue} queue</strong> — start one with" in page, url
        assert "<code>make worker</code>" in page, url
    assert f'id="job-{job.pk}"' in client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    results = client.get(f"/annotate/campaigns/{campaign.pk}/results/").content.decode()
    assert f'id="judge-run-{judge_run.pk}"' in results

    run.status, run.claimed_by = Run.Status.RUNNING, "w:1:t"
    run.save()
    assert "data-queue-wait" not in client.get(f"/studio/runs/{run.pk}/").content.decode()


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_live_worker_serves_only_the_queues_it_consumes(tmp_path: Path, client: Client) -> None:
    assert served_queues() == ServedQueues(True, {})  # no worker yet: known, none served
    with celery_worker(tmp_path, extra_args=["-Q", "judge,default"]) as worker:
        served = served_queues()
        assert served.known, served.error
        assert served.queues.get("gpu") is None
        [name] = served.queues["judge"]
        assert name.startswith("test-") and served.queues["default"] == [name]

        dataset = Dataset.objects.create(name="queue-live")
        run = Run.objects.create(name="gpu-wait", dataset=dataset)
        grading = PipelineJob.objects.create(
            kind=PipelineJob.Kind.SCORE_REFERENCES, dataset=dataset, status="running",
            claimed_by="elsewhere:1:t",  # held: the live worker does not take it
        )  # fmt: skip
        client.force_login(grant_researcher(User.objects.create_user("l", password="pw-l-1234")))
        page = client.get(f"/studio/runs/{run.pk}/").content.decode()
        assert 'data-served="no"' in page and "No worker is serving the gpu queue" in page
        # Never sent, so the live worker does not take it.
        waiting = PipelineJob.objects.create(
            kind=PipelineJob.Kind.SCORE_REFERENCES, dataset=dataset
        )
        wait = queue_wait(waiting)
        assert wait is not None and wait.served is True and wait.workers == [name]
        assert wait.ahead is not None and wait.ahead.pk == grading.pk and wait.ahead.running
        assert worker.process.poll() is None
