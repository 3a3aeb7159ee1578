"""/metrics: Prometheus text that parses back to the numbers in the database and the broker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.webapp.ops.conftest import make_run
from webapp.ops.metrics import Family, quantile, render
from webapp.ops.tasks import ping
from webapp.studio.models import Judgment, PipelineJob, Run, StepMetric
from workers import app
from workers.queues import QueueName

OPS_TOKEN = "m" * 40


@pytest.fixture(autouse=True)
def _ops_token(settings: Any) -> None:
    settings.WRITING_RL_OPS_TOKEN = OPS_TOKEN


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {OPS_TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.django_db
def test_it_counts_runs_judgments_and_steps(client: Client) -> None:
    setup = make_run(tiers=(2,))
    run, instruction = setup.run, setup.instructions[0]
    Run.objects.create(name="q", dataset=run.dataset, status=Run.Status.QUEUED)
    Run.objects.create(name="f", dataset=run.dataset, status=Run.Status.FAILED)
    for latency, verdict in [(1.0, "win"), (2.0, "loss"), (3.0, "tie"), (4.0, "invalid")]:
        Judgment.objects.create(
            run=run,
            instruction=instruction,
            step=1,
            rollout="r",
            verdict=verdict,
            latency_s=latency,
        )
    # An old judgment, outside the window, counts for nothing.
    old = Judgment.objects.create(
        run=run, instruction=instruction, step=0, rollout="r", verdict="invalid", latency_s=100.0
    )
    Judgment.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=2))
    now = timezone.now()
    for step in range(5):
        row = StepMetric.objects.create(run=run, step=step)
        StepMetric.objects.filter(pk=row.pk).update(
            created_at=now - timedelta(seconds=40 - 10 * step)
        )

    samples = scrape(client)

    assert samples[("writing_rl_runs", (("status", "running"),))] == 1
    assert samples[("writing_rl_runs", (("status", "queued"),))] == 1
    assert samples[("writing_rl_runs", (("status", "failed"),))] == 1
    assert samples[("writing_rl_runs", (("status", "succeeded"),))] == 0
    assert samples[("writing_rl_judge_latency_seconds_count", ())] == 4
    assert samples[("writing_rl_judge_latency_seconds_sum", ())] == 10.0
    assert samples[("writing_rl_judge_latency_seconds", (("quantile", "0.5"),))] == 2.5
    assert samples[("writing_rl_judge_error_ratio", ())] == 0.25
    assert samples[("writing_rl_judgments_window", (("verdict", "win"),))] == 1
    assert samples[("writing_rl_run_steps_per_second", (("run", str(run.pk)),))] == pytest.approx(
        0.1
    )
    assert samples[("writing_rl_scrape_error", (("source", "queues"),))] == 0


@pytest.mark.django_db
def test_it_exports_judge_tokens_and_runs_waiting_for_their_judge(client: Client) -> None:
    setup = make_run(tiers=(2,))
    run, instruction = setup.run, setup.instructions[0]
    for step, (prompt, completion, attempts) in enumerate([(100, 10, 1), (300, 30, 4)], 1):
        Judgment.objects.create(run=run, instruction=instruction, step=step, rollout="r",
                                verdict="win", prompt_tokens=prompt,
                                completion_tokens=completion, attempts=attempts)  # fmt: skip
    waiting = make_run(tiers=(2,), name="waiting").run
    Run.objects.filter(pk=waiting.pk).update(judge_wait={"step": 1, "last_error": "refused"})

    samples = scrape(client)

    assert samples[("writing_rl_judge_tokens_window", (("kind", "prompt"),))] == 400
    assert samples[("writing_rl_judge_tokens_window", (("kind", "completion"),))] == 40
    assert samples[("writing_rl_judge_requests_window", ())] == 5
    labels = (("kind", "prompt"), ("run", str(run.pk)))
    assert samples[("writing_rl_run_judge_tokens", labels)] == 400
    assert samples[("writing_rl_run_judge_tokens_per_step", (("run", str(run.pk)),))] == 220
    assert samples[("writing_rl_run_judge_tokens_per_step", (("run", str(waiting.pk)),))] == 0
    assert samples[("writing_rl_run_waiting_for_judge", (("run", str(run.pk)),))] == 0
    assert samples[("writing_rl_run_waiting_for_judge", (("run", str(waiting.pk)),))] == 1


@pytest.mark.django_db
def test_it_counts_running_runs_and_jobs_whose_worker_was_lost(client: Client) -> None:
    run = make_run(tiers=(2,)).run
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, heartbeat_at=timezone.now())
    Run.objects.create(
        name="lost",
        dataset=run.dataset,
        status=Run.Status.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    Run.objects.create(
        name="done long ago",
        dataset=run.dataset,
        status=Run.Status.SUCCEEDED,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    PipelineJob.objects.create(
        kind="score_references",
        dataset=run.dataset,
        status="running",
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    PipelineJob.objects.create(
        kind="order_tiers", dataset=run.dataset, status="running", heartbeat_at=timezone.now()
    )
    samples = scrape(client)
    assert samples[("writing_rl_runs_worker_lost", ())] == 1
    assert samples[("writing_rl_jobs_worker_lost", ())] == 1


@pytest.mark.django_db
def test_it_reports_the_depth_of_each_queue(client: Client) -> None:
    before = scrape(client)[("writing_rl_queue_depth", (("queue", "judge"),))]
    for _ in range(3):
        ping.apply_async(args=[{}], queue=QueueName.JUDGE.value)
    try:
        after = scrape(client)
        assert after[("writing_rl_queue_depth", (("queue", "judge"),))] == before + 3
        assert ("writing_rl_queue_depth", (("queue", "gpu"),)) in after
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(QueueName.JUDGE.value)


@pytest.mark.django_db
def test_it_still_answers_when_the_broker_is_down(client: Client, settings: Any) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = scrape(client)
    assert samples[("writing_rl_scrape_error", (("source", "queues"),))] == 1
    assert samples[("writing_rl_scrape_error", (("source", "runs"),))] == 0
    assert not any(name == "writing_rl_queue_depth" for name, _ in samples)


def test_it_escapes_labels_and_writes_special_values() -> None:
    family = Family("x_total", 'help with "quotes"')
    family.add(float("nan"), name='a"b\\c\nd')
    family.add(float("inf"), name="inf")
    text = render([family])
    parsed = next(iter(text_string_to_metric_families(text)))
    values = {s.labels["name"]: s.value for s in parsed.samples}
    assert values["inf"] == float("inf")
    assert 'a"b\\c\nd' in values
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5 and quantile([7.0], 0.99) == 7.0


@pytest.mark.django_db
def test_it_exports_token_totals_by_source_and_their_cost(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from django.core.cache import cache

    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        json.dumps([{"name": "paid", "base_url": "http://judge.lab/v1",
                     "price_per_million_prompt_tokens": 1000.0,
                     "price_per_million_completion_tokens": 2000.0}]),
    )  # fmt: skip
    cache.clear()
    setup = make_run(tiers=(2,))
    run, instruction = setup.run, setup.instructions[0]
    Run.objects.filter(pk=run.pk).update(config={"judge": {"endpoint": "paid", "model": "m"}})
    Judgment.objects.create(run=run, instruction=instruction, step=1, rollout="r", verdict="win",
                            prompt_tokens=1000, completion_tokens=100, attempts=3)  # fmt: skip
    PipelineJob.objects.create(
        kind="generate_references", dataset=run.dataset,
        usage={"local": {"calls": 2, "attempts": 2, "prompt_tokens": 0, "completion_tokens": 0},
               "paid": {"calls": 1, "attempts": 1, "prompt_tokens": 50, "completion_tokens": 500}},
    )  # fmt: skip

    samples = scrape(client)

    assert samples[("writing_rl_tokens", (("kind", "prompt"), ("source", "run_judge")))] == 1000
    assert samples[("writing_rl_tokens", (("kind", "completion"), ("source", "pipeline")))] == 500
    assert samples[("writing_rl_tokens", (("kind", "prompt"), ("source", "evaluation")))] == 0
    assert samples[("writing_rl_requests", (("source", "run_judge"),))] == 3
    assert samples[("writing_rl_requests", (("source", "pipeline"),))] == 3
    assert samples[("writing_rl_cost", (("source", "run_judge"),))] == pytest.approx(1.2)
    assert samples[("writing_rl_cost", (("source", "pipeline"),))] == pytest.approx(1.05)
    assert ("writing_rl_cost", (("source", "evaluation"),)) not in samples  # nothing priced
    assert samples[("writing_rl_run_judge_cost", (("run", str(run.pk)),))] == pytest.approx(1.2)
    assert samples[("writing_rl_scrape_error", (("source", "tokens"),))] == 0
