"""Time limits per kind of Celery task, as a ``task_annotations`` entry.

Ordinary tasks get ``CELERY_TASK_SOFT_TIME_LIMIT`` / ``CELERY_TASK_TIME_LIMIT``. Tasks routed
to the GPU queue (training runs, generation) run for hours or days, so they get
``WRITING_RL_GPU_TASK_TIME_LIMIT`` as the hard limit and a soft limit ten minutes earlier, in
which a training task can write a checkpoint and stop cleanly.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from django.conf import settings

from workers.queues import ROUTES, QueueName

GRACE_S = 600


class GpuTaskTimeLimits:
    """Celery calls ``annotate(task)`` for every task; a dict it returns overrides attributes."""

    def annotate(self, task: Any) -> dict[str, int] | None:
        gpu_patterns = [p for p, queue in ROUTES.items() if queue is QueueName.GPU]
        if not any(fnmatchcase(task.name, pattern) for pattern in gpu_patterns):
            return None
        hard = int(getattr(settings, "WRITING_RL_GPU_TASK_TIME_LIMIT", 72 * 3600))
        return {"time_limit": hard, "soft_time_limit": max(hard - GRACE_S, 1)}
