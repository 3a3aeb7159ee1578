"""Celery tasks (annotation)."""
