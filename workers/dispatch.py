"""Sending a task by its name.

Services enqueue work through :func:`send` instead of importing the task modules: the tasks
call the services, so a service importing a task would close an import cycle. The task is
still sent through its registered task object, so ``CELERY_TASK_ALWAYS_EAGER`` and the routes
apply exactly as for ``task.apply_async``. Every Django app imports its ``tasks`` module when
it is ready (``webapp/<app>/apps.py``), so each process that can call a service knows every
task.
"""

from __future__ import annotations

from typing import Any

from celery.result import AsyncResult

from workers.celery_app import app
from workers.queues import TaskName


def send(name: TaskName, *, args: list[Any], **options: Any) -> AsyncResult:
    """Send task ``name`` with ``args``; ``options`` (``task_id``, ``queue``, ``countdown``…)
    go to ``apply_async``, those left None are not passed."""
    task = app.tasks[name.value]
    return task.apply_async(
        args=args, **{key: value for key, value in options.items() if value is not None}
    )
