"""Fixtures of the annotation tests (the builders live in ``factories``)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from webapp.studio.roles import grant_researcher


@pytest.fixture
def annotators(db: None) -> list[User]:
    return [User.objects.create_user(f"ann{i}") for i in range(3)]


@pytest.fixture
def researcher(db: None) -> User:
    return grant_researcher(User.objects.create_user("res"))
