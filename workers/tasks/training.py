"""Celery tasks (training)."""
