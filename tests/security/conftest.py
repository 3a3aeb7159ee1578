"""Accounts for the security probes: the three roles of a shared instance.

These tests run on whatever database ``DATABASE_URL`` names; CI runs them on PostgreSQL (the
probes that only PostgreSQL can show, like NUL characters in text, say so themselves).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.studio.roles import grant_researcher

PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def researcher(db: None) -> User:
    return grant_researcher(User.objects.create_user("rosa", password=PASSWORD))


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("arne", password=PASSWORD)


@pytest.fixture
def admin_user(db: None) -> User:
    return User.objects.create_superuser("ada", password=PASSWORD)


@pytest.fixture
def researcher_client(researcher: User) -> Client:
    client = Client()
    client.force_login(researcher)
    return client


@pytest.fixture
def annotator_client(annotator: User) -> Client:
    client = Client()
    client.force_login(annotator)
    return client
