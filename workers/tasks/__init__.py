"""Celery tasks. Each module is thin: load ids from the database, call the engine through
the web app's services, record the outcome."""

from workers.tasks import annotation, evaluation, pipeline, system, training

__all__ = ["annotation", "evaluation", "pipeline", "system", "training"]
