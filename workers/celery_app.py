"""The Celery application, configured from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os

from celery import Celery

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
