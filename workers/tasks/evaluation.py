"""Celery tasks (evaluation)."""
