"""Celery tasks (pipeline)."""
