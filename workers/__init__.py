"""The Celery side of Writing-RL Studio: the app (configured from Django settings), its
queues, task names and routes, and sending a task by name. The tasks themselves live next to
their Django app (``webapp/<app>/tasks.py``) and are found when Django is set up."""

from workers.celery_app import app

__all__ = ["app"]
