"""A throw-away PostgreSQL database for a benchmark, and Django pointed at it."""

from __future__ import annotations

import os

ADMIN_URL = "postgres://root@127.0.0.1:5432/postgres"


def database_url(name: str) -> str:
    return f"postgres://root@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def recreate_database(name: str) -> None:
    """Drop ``name`` if it exists and create it empty."""
    import psycopg

    drop_database(name)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")


def setup_django(name: str) -> None:
    """Configure Django (``webapp.settings``) on the benchmark database ``name``."""
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
