"""The Celery application, configured from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import worker_init

from workers.queues import EXCHANGE, QUEUES, QueueName, task_routes

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

app = Celery("writing_rl")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = QUEUES
app.conf.task_default_queue = QueueName.DEFAULT.value
app.conf.task_default_exchange = EXCHANGE.name
app.conf.task_default_routing_key = QueueName.DEFAULT.value
app.conf.task_routes = task_routes()
# The tasks live in the Django apps (webapp/<app>/tasks.py); found once Django is set up.
app.autodiscover_tasks()


@worker_init.connect
def _bound_idle_transactions(**kwargs: Any) -> None:
    """A worker frozen inside a fenced write must not hold its job's row lock forever: its
    sessions end once idle in a transaction (see webapp/ops/db_sessions.py)."""
    from webapp.ops.db_sessions import bound_idle_transactions

    bound_idle_transactions()
