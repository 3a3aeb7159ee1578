from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.studio.roles import grant_researcher


@pytest.fixture
def researcher(db: None) -> User:
    return grant_researcher(User.objects.create_user("res", password="pw-res-123"))


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("ann", password="pw-ann-123")


@pytest.fixture
def staff_client(client: Client, researcher: User) -> Client:
    client.force_login(researcher)
    # The session's first page stores its CSRF secret there (CSRF_USE_SESSIONS); done here,
    # so the query counts the tests measure are the page's own.
    client.get("/studio/")
    return client


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    # Rendered charts are cached per run id; ids repeat across tests on some databases.
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Pipeline-job tasks sent to the broker (recorded here instead)."""
    from webapp.studio.tasks import run_pipeline_job

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(run_pipeline_job, "apply_async", lambda **kw: calls.append(kw))
    return calls


@pytest.fixture
def pipeline_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment's endpoints for the pipeline forms: one that lists its models, one that
    does not."""
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        '[{"name": "dashscope", "base_url": "http://judge:8001/v1", "models": ["qwen-plus"], '
        '"api_key_env": "DASHSCOPE_API_KEY"}, {"name": "vllm", "base_url": "http://gpu:8000/v1"}]',
    )
