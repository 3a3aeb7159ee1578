from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client


@pytest.fixture
def researcher(db: None) -> User:
    return User.objects.create_user("res", password="pw-res-123", is_staff=True)


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("ann", password="pw-ann-123")


@pytest.fixture
def staff_client(client: Client, researcher: User) -> Client:
    client.force_login(researcher)
    return client


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Rendered charts are cached per run id; ids repeat across tests on some databases.
    from django.core.cache import cache

    cache.clear()
