"""A task round-trips through a real worker process on the real broker."""

from __future__ import annotations

import os

import pytest

from tests import services
from tests.conftest import WorkerProcess
from webapp.ops.tasks import ping
from workers import app
from workers.queues import QueueName, task_routes

pytestmark = pytest.mark.services


def test_it_routes_tasks_to_the_queue_of_their_resource() -> None:
    router = app.amqp.router
    assert router.route({}, "workers.tasks.training.train_run")["queue"].name == "gpu"
    assert router.route({}, "workers.tasks.judging.judge_batch")["queue"].name == "judge"
    assert router.route({}, "workers.tasks.system.ping")["queue"].name == "default"
    assert {q["queue"] for q in task_routes().values()} <= {q.value for q in QueueName}


def test_it_round_trips_a_task_through_a_worker_on_redis(
    celery_worker_process: WorkerProcess,
) -> None:
    services.require_redis()
    result = ping.apply_async(args=[{"hello": "redis"}], queue=QueueName.JUDGE.value)
    reply = result.get(timeout=60)
    assert reply["payload"] == {"hello": "redis"}
    # A different process answered: not eager mode, not this test process.
    assert reply["pid"] == celery_worker_process.process.pid
    assert reply["pid"] != os.getpid()
