"""``make demo``'s set-up path with no endpoint configuration and with the one
``WRITING_RL_ENDPOINTS`` entry README shows (its exact line, the base URL pointed at a fake
OpenAI-compatible server started here).

What ``scripts/demo.sh`` runs around the workers — the start-up check of the endpoints,
``create_demo_users``, ``demo_setup`` and ``demo_launch`` — then what a researcher does next:
the run form lists the endpoint, a run is created with it, and the worker's checked resolver
(``webapp.studio.paths``, what ``run_execute`` calls before training) accepts both runs and
reaches the declared server. SmolLM2 is replaced by the tiny random model in ``demo_setup``
(the real one takes minutes here: ``test_demo_commands.py``'s slow test covers it); no run is
trained.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from rl_engine.judging import PairRequest, make_judge
from rl_engine.testing import ChatCall, FakeOpenAIServer
from rl_engine.training import TrainConfig
from tests.webapp.studio_views.test_run_new import form_data
from webapp.studio.demo import DATASET_NAME, RUN_NAME
from webapp.studio.models import Dataset, Run
from webapp.studio.paths import check_train_config, resolve_checked

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[3] / "README.md"
LAB_KEY = "demo-lab-key-probe"


def readme_endpoints_line() -> dict[str, Any]:
    """The one-entry example README gives for ``make demo`` (the exact env line)."""
    found = re.search(r"^WRITING_RL_ENDPOINTS='(.+)' make demo$", README.read_text(), re.M)
    assert found, "README lost its one-entry `WRITING_RL_ENDPOINTS=... make demo` line"
    parsed: dict[str, Any] = json.loads(found.group(1))
    return parsed


@pytest.fixture
def tiny_writers(monkeypatch: pytest.MonkeyPatch) -> None:
    """demo_setup's SmolLM2 replaced by the tiny random model (writes token soup, quickly)."""
    from rl_engine.models import tiny_model
    from webapp.studio.management.commands import demo_setup

    monkeypatch.setattr(demo_setup, "load_policy", lambda *a, **k: tiny_model(0))


@pytest.fixture
def judge_server() -> Iterator[tuple[FakeOpenAIServer, list[ChatCall]]]:
    calls: list[ChatCall] = []

    def answer(call: ChatCall) -> str:
        calls.append(call)
        return "The first is better. [[A]]"

    with FakeOpenAIServer(latency_s=0.0, policy=answer) as server:
        yield server, calls


@pytest.mark.parametrize("configuration", ["none", "one entry"])
def test_the_demo_sets_up_with_no_endpoint_and_with_one(
    configuration: str,
    monkeypatch: pytest.MonkeyPatch,
    tiny_writers: None,
    judge_server: tuple[FakeOpenAIServer, list[ChatCall]],
) -> None:
    server, calls = judge_server
    for name in ("WRITING_RL_ENDPOINTS", "WRITING_RL_CUSTOM_ENDPOINT_HOSTS",
                 "WRITING_RL_JUDGE_KIND", "WRITING_RL_JUDGE_BASE_URL"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    expected = "heuristic"
    if configuration == "one entry":
        declared = readme_endpoints_line()
        [entry] = declared["endpoints"]
        assert entry["base_url"] == "http://127.0.0.1:8080/v1"  # what README tells
        entry["base_url"] = server.base_url
        if entry.get("api_key_env"):
            monkeypatch.setenv(entry["api_key_env"], LAB_KEY)
        monkeypatch.setenv("WRITING_RL_ENDPOINTS", json.dumps(declared))
        expected = declared["default_judge"]
    apps.get_app_config("studio").ready()  # the start-up check of the declared endpoints

    # scripts/demo.sh: users, the dataset and its references, then the demo run.
    call_command("create_demo_users", stdout=StringIO())
    out = StringIO()
    call_command("demo_setup", stdout=out)
    assert "ready" in out.getvalue()
    call_command("demo_launch", stdout=StringIO())
    demo_run = Run.objects.get(name=RUN_NAME)
    assert demo_run.config["judge"]["endpoint"] == expected

    # The researcher's run form lists the endpoint, and a run can be created with it.
    client = Client()
    client.force_login(User.objects.get(username="researcher"))
    page = client.get("/studio/runs/new/").content.decode()
    for name in ("heuristic", "local", expected):
        assert f'<option value="{name}"' in page, name
    dataset = Dataset.objects.get(name=DATASET_NAME)
    model = demo_run.config["judge"].get("model", "")
    response = client.post(
        "/studio/runs/new/",
        form_data(dataset.pk, name="mine", judge_endpoint=expected, judge_model=model),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    mine = Run.objects.get(name="mine")

    # The worker's checked resolver accepts both, and the judge reaches the declared server.
    for run in (demo_run, mine):
        config = TrainConfig.from_dict(run.config)
        check_train_config(config)  # what run_execute calls before training
        resolved = resolve_checked(config.judge, "judge")
        assert resolved.endpoint.name == expected
        judge = make_judge(config.judge)
        [judgment] = judge.compare_sync([PairRequest("Write.", "One text.", "Another.")])
        assert judgment.verdict.value in ("A", "B", "TIE"), judgment
    if configuration == "one entry":
        assert resolved.base_url == server.base_url
        assert len(calls) == 2
        if entry.get("api_key_env"):
            assert calls[0].headers["authorization"] == f"Bearer {LAB_KEY}"
    else:
        assert calls == []
