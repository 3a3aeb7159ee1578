"""Celery workers for Writing-RL Studio: the app, its queues and the tasks."""

from workers.celery_app import app

__all__ = ["app"]
