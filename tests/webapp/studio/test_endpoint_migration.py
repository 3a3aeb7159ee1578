"""The data migration that makes stored specs name their endpoint (and drops stored key
variables, including keys pasted where a variable's name went)."""

from __future__ import annotations

import importlib
import json

import pytest
from django.apps import apps

from rl_engine.judging import JudgeSpec
from tests.webapp.studio.factories import make_dataset, make_run
from webapp.studio.models import PipelineJob, Run

studio_migration = importlib.import_module("webapp.studio.migrations.0010_endpoint_names")

PASTED = "sk-live-0123456789abcdef"


@pytest.fixture(autouse=True)
def declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "WRITING_RL_ENDPOINTS",
        json.dumps([{"name": "lab", "base_url": "http://gpu:8000/v1", "models": ["qwen"]}]),
    )


@pytest.mark.django_db
def test_stored_specs_are_rewritten_to_name_their_endpoint() -> None:
    dataset = make_dataset()
    declared_url = make_run(dataset, config={"judge": {
        "kind": "openai", "model": "qwen", "base_url": "http://gpu:8000/v1/",
        "api_key_env": PASTED}})  # fmt: skip
    elsewhere = make_run(dataset, config={"judge": {
        "kind": "openai", "model": "m", "base_url": "http://other:1/v1",
        "api_key_env": "SECRET_KEY"}})  # fmt: skip
    heuristic = make_run(dataset, config={"judge": {"kind": "heuristic", "api_key_env": "X"}})
    job = PipelineJob.objects.create(
        kind="generate_references",
        dataset=dataset,
        params={
            "scorer": {"kind": "openai", "model": "qwen", "base_url": "http://gpu:8000/v1"},
            "writers": [{"name": "w", "kind": "local", "model": "tiny", "max_new_tokens": 9,
                         "base_url": "", "api_key_env": "OPENAI_API_KEY"}],
        },
    )  # fmt: skip
    studio_migration.forwards(apps, None)

    judge = Run.objects.get(pk=declared_url.pk).config["judge"]
    assert judge == {"endpoint": "lab", "model": "qwen"}
    assert JudgeSpec.from_dict(judge).resolve().base_url == "http://gpu:8000/v1"
    # Not declared: kept as it was minus the key variable, and refused when used.
    kept = Run.objects.get(pk=elsewhere.pk).config["judge"]
    assert kept == {"kind": "openai", "model": "m", "base_url": "http://other:1/v1"}
    with pytest.raises(ValueError, match="not a declared endpoint"):
        JudgeSpec.from_dict(kept)
    assert Run.objects.get(pk=heuristic.pk).config["judge"] == {"endpoint": "heuristic"}
    params = PipelineJob.objects.get(pk=job.pk).params
    assert params["scorer"] == {"endpoint": "lab", "model": "qwen"}
    assert params["writers"] == [{"name": "w", "endpoint": "local", "model": "tiny",
                                  "max_tokens": 9}]  # fmt: skip
    everything = json.dumps([r.config for r in Run.objects.all()] + [params])
    assert PASTED not in everything and "api_key_env" not in everything
