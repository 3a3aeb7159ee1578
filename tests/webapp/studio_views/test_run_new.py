"""The new-run form: every TrainConfig field with its help, inline errors, keys never shown."""

from __future__ import annotations

import dataclasses
import html as html_lib
from typing import Any

import pytest
from django.test import Client

from rl_engine.judging import JudgeSpec
from rl_engine.training import TrainConfig
from tests.webapp.studio_views.factories import make_dataset, make_selection
from webapp.studio.forms import READ_ONLY_FIELDS, RunForm
from webapp.studio.models import CurriculumState, Run


def form_data(dataset_pk: int, **overrides: Any) -> dict[str, Any]:
    """What a browser posts for an untouched form (initial values), plus overrides."""
    form = RunForm(initial={"dataset": dataset_pk})
    data: dict[str, Any] = {"name": "tiny", "dataset": dataset_pk, "selection": ""}
    for name in form.config_fields + form.judge_fields:
        field = form.fields[name]
        if field.disabled:
            continue
        value = field.initial
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_it_renders_every_config_field_with_its_help(staff_client: Client) -> None:
    page = html_lib.unescape(staff_client.get("/studio/runs/new/").content.decode())
    for field in dataclasses.fields(TrainConfig):
        if field.name == "judge":
            assert field.metadata["help"] in page
            continue
        if field.name in READ_ONLY_FIELDS:  # text saying who sets it, not an input
            assert f'name="{field.name}"' not in page, field.name
            assert READ_ONLY_FIELDS[field.name] in page, field.name
            continue
        assert f'name="{field.name}"' in page, field.name
        assert field.metadata["help"] in page, field.name
    for field in dataclasses.fields(JudgeSpec):
        if field.name == "base_url":  # only where the deployment allows custom hosts
            assert 'name="judge_base_url"' not in page
            continue
        assert f'name="judge_{field.name}"' in page, field.name
        assert field.metadata["help"] in page, field.name
    assert "api_key_env" not in page
    assert '<option value="grpo" selected>' in page


def test_it_creates_a_queued_run_with_the_config(staff_client: Client) -> None:
    dataset = make_dataset(instructions=3)
    data = form_data(dataset.pk, max_steps=7, temperature=0.7, reward_terms='{"length": 0.5}')
    response = staff_client.post("/studio/runs/new/", data)
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/studio/runs/{run.pk}/"
    assert run.status == Run.Status.QUEUED and run.total_steps == 7
    config = TrainConfig.from_dict(run.config)
    assert config.temperature == 0.7 and config.reward_terms == {"length": 0.5}
    assert config.judge.kind == "heuristic"
    assert CurriculumState.objects.filter(run=run).count() == 3


def test_it_trains_on_a_selection_of_the_same_dataset_only(staff_client: Client) -> None:
    dataset = make_dataset(instructions=3)
    other = make_selection(make_dataset("other"))
    response = staff_client.post("/studio/runs/new/", form_data(dataset.pk, selection=other.pk))
    assert response.status_code == 400
    page = html_lib.unescape(response.content.decode())
    assert "This selection belongs to the dataset 'other', not 'essays'" in page
    chosen = make_selection(dataset, chosen=2)
    staff_client.post("/studio/runs/new/", form_data(dataset.pk, selection=chosen.pk))
    assert CurriculumState.objects.filter(run__selection=chosen).count() == 2


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"temperature": "0"}, "temperature", "Temperature must be above 0"),
        ({"max_steps": "0"}, "max_steps", "Max steps must be a whole number of at least 1"),
        ({"gradient_accumulation_steps": "3"}, "gradient_accumulation_steps", "must divide"),
        ({"reward_terms": "{oops"}, "reward_terms", "Not valid JSON"),
        ({"reward_terms": '{"style": 1}'}, "reward_terms", "unknown term"),
        ({"num_generations": "abc"}, "num_generations", "Enter a whole number"),
        ({"judge_endpoint": "local", "judge_model": ""}, "judge_model", "needs a model"),
        ({"judge_endpoint": "elsewhere"}, "judge_endpoint", "Select a valid choice"),
        ({"judge_structured_output": "regex"}, "judge_structured_output", "Select a valid"),
        ({"algorithm": "dpo"}, "algorithm", "Select a valid choice"),
        ({"use_vllm": "colocate", "device": "cpu"}, "use_vllm", "needs CUDA"),
    ],
)
def test_it_shows_validation_errors_inline(
    staff_client: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    dataset = make_dataset()
    response = staff_client.post("/studio/runs/new/", form_data(dataset.pk, **overrides))
    assert response.status_code == 400
    page = response.content.decode()
    errors_at = page.index(f'id="id_{field}_errors"')
    assert message in page[errors_at : errors_at + 600], page[errors_at : errors_at + 600]
    # The researcher's other values are kept.
    assert 'value="tiny"' in page
    assert not Run.objects.exists()


def test_it_explains_a_dataset_without_training_instructions(staff_client: Client) -> None:
    dataset = make_dataset(instructions=2, references=0)
    response = staff_client.post("/studio/runs/new/", form_data(dataset.pk))
    assert response.status_code == 400
    assert "no training instruction with a tiered reference" in response.content.decode()


LAB_ENDPOINTS = (
    '[{"name": "lab", "base_url": "http://127.0.0.1:9/v1", "models": ["judge-model", "big"], '
    '"api_key_env": "STUDIO_JUDGE_KEY", "structured_output": "grammar"}]'
)


def test_it_never_renders_the_api_key(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sk-test-7d1f0c9e-never-show-me"
    monkeypatch.setenv("STUDIO_JUDGE_KEY", secret)
    monkeypatch.setenv("WRITING_RL_ENDPOINTS", LAB_ENDPOINTS)
    page = staff_client.get("/studio/runs/new/").content.decode()
    assert secret not in page and "STUDIO_JUDGE_KEY" not in page
    assert '<option value="lab">' in page and "judge-model, big" in page
    dataset = make_dataset()
    data = form_data(
        dataset.pk,
        judge_endpoint="lab",
        judge_model="big",
        temperature="0",  # an invalid value, so the form comes back filled in
    )
    page = staff_client.post("/studio/runs/new/", data).content.decode()
    assert secret not in page and "STUDIO_JUDGE_KEY" not in page
    data["temperature"] = "1.0"
    staff_client.post("/studio/runs/new/", data)
    run = Run.objects.get()
    assert (run.config["judge"]["endpoint"], run.config["judge"]["model"]) == ("lab", "big")
    assert "api_key_env" not in run.config["judge"] and run.config["judge"]["base_url"] == ""
    assert "127.0.0.1:9" not in str(run.config)  # the address stays with the deployment
    assert secret not in str(run.config) and "STUDIO_JUDGE_KEY" not in str(run.config)
    assert secret not in staff_client.get(f"/studio/runs/{run.pk}/").content.decode()


def test_the_model_must_be_one_the_endpoint_lists(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRITING_RL_ENDPOINTS", LAB_ENDPOINTS)
    dataset = make_dataset()
    data = form_data(dataset.pk, judge_endpoint="lab", judge_model="gpt-4o")
    response = staff_client.post("/studio/runs/new/", data)
    assert response.status_code == 400
    page = html_lib.unescape(response.content.decode())
    errors_at = page.index('id="id_judge_model_errors"')
    assert "model 'gpt-4o' is not one of them" in page[errors_at : errors_at + 400]
    assert not Run.objects.exists()


def test_the_form_starts_from_the_deployments_default_judge(
    staff_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRITING_RL_JUDGE_KIND", "openai")
    monkeypatch.setenv("WRITING_RL_JUDGE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("WRITING_RL_JUDGE_MODEL", "qwen-judge")
    form = RunForm()
    assert form.fields["judge_endpoint"].initial == "judge"
    page = staff_client.get("/studio/runs/new/").content.decode()
    assert '<option value="judge" selected>' in page
    dataset = make_dataset()
    staff_client.post("/studio/runs/new/", form_data(dataset.pk))
    judge = Run.objects.get().config["judge"]
    assert judge["endpoint"] == "judge"
    assert JudgeSpec.from_dict(judge).resolve().model == "qwen-judge"


def test_it_preselects_the_dataset_from_the_query(staff_client: Client) -> None:
    dataset = make_dataset()
    page = staff_client.get(f"/studio/runs/new/?dataset={dataset.pk}").content.decode()
    assert f'<option value="{dataset.pk}" selected>' in page


@pytest.mark.parametrize("field", ["judge_model", "judge_extra_body", "name", "policy"])
def test_it_discards_a_key_pasted_into_any_field(staff_client: Client, field: str) -> None:
    dataset = make_dataset()
    pasted = "sk-live-51f0a2c3d4e5-pasted-by-mistake"
    value = f'{{"api_key": "{pasted}"}}' if field == "judge_extra_body" else pasted
    response = staff_client.post("/studio/runs/new/", form_data(dataset.pk, **{field: value}))
    assert response.status_code == 400
    page = response.content.decode()
    assert pasted not in page
    assert "looks like an API key" in page
    assert not Run.objects.exists()
