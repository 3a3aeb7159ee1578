"""The new-run form as a researcher uses it: presets, Basic and Advanced sections, cloning a
run, every error at once in plain words, selections of the chosen dataset, and the time
estimate from this instance's measured step times."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django import forms
from django.test import Client

from rl_engine.training import TrainConfig
from rl_engine.training.config import REPORT_TO
from tests.webapp.studio_views.factories import make_dataset, make_selection
from tests.webapp.studio_views.test_run_new import form_data
from webapp.studio import selectors
from webapp.studio.demo import RUN_CONFIG
from webapp.studio.forms import BASIC_FIELDS, RunForm, plain_message, run_clone_initial
from webapp.studio.models import Run, StepMetric
from webapp.studio.paths import PathNotAllowed, check_train_config
from webapp.studio.run_presets import PRESETS
from webapp.studio.views.runs import duration_text

NEW = "/studio/runs/new/"


def page_of(response: object) -> str:
    return html_lib.unescape(response.content.decode())  # type: ignore[attr-defined]


def input_value(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert match, name
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def selected(page: str, name: str) -> str:
    match = re.search(rf'<select name="{name}".*?</select>', page, re.S)
    assert match, name
    option = re.search(r'<option value="([^"]*)" selected>', match.group(0))
    return option.group(1) if option else ""


# -- presets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", list(PRESETS))
def test_every_preset_is_a_valid_config_with_a_source_for_each_value(key: str) -> None:
    preset = PRESETS[key]
    config = preset.config()
    for name, value in preset.values.items():
        assert getattr(config, name) == value, name
        assert preset.sources.get(name), f"{key}: {name} has no source"
    assert "judge" not in preset.values  # the judge stays the deployment's


def test_the_demo_preset_is_the_demo_run_and_the_paper_preset_the_papers_settings() -> None:
    demo = PRESETS["demo"].config()
    assert {k: getattr(demo, k) for k in RUN_CONFIG if k != "judge"} == {
        k: v for k, v in RUN_CONFIG.items() if k != "judge"
    }
    paper = PRESETS["gpu-paper"].config()
    # REFERENCE.md §2: PPO with GAE critic, lr 1e-6, KL 0.001, batch 32, up to 10k tokens.
    assert (paper.algorithm, paper.backend) == ("ppo", "verl")
    assert (paper.learning_rate, paper.kl_beta) == (1e-6, 0.001)
    assert (paper.prompts_per_step, paper.max_completion_tokens) == (32, 10_000)
    assert (paper.reward_position, paper.curriculum) == ("disadvantage", "dynamic")


def test_applying_a_preset_fills_the_form_and_keeps_the_name_and_data(
    staff_client: Client,
) -> None:
    dataset = make_dataset()
    data = form_data(dataset.pk, name="my essay run", max_steps=7, preset="gpu-paper")
    response = staff_client.post(NEW, {**data, "apply_preset": "1"})
    assert response.status_code == 200
    page = page_of(response)
    assert not Run.objects.exists()
    assert "error-summary" not in page  # filling in is not a submit: no errors shown
    assert input_value(page, "name") == "my essay run"
    assert selected(page, "dataset") == str(dataset.pk)
    assert selected(page, "algorithm") == "ppo" and selected(page, "backend") == "verl"
    assert input_value(page, "max_completion_tokens") == "10000"
    assert input_value(page, "max_steps") == "7"  # the paper preset does not set it
    assert "GPU, paper-like (applied)" in page
    # The filled-in form launches as is.
    filled = {**data, "algorithm": "ppo", "backend": "verl"}
    for name, value in PRESETS["gpu-paper"].values.items():
        if isinstance(value, bool):
            filled[name] = "on" if value else None
        else:
            filled[name] = value
    response = staff_client.post(NEW, {k: v for k, v in filled.items() if v is not None})
    assert response.status_code == 302, page_of(response)[:3000]
    config = TrainConfig.from_dict(Run.objects.get().config)
    assert (config.algorithm, config.learning_rate, config.max_steps) == ("ppo", 1e-6, 7)


def test_a_preset_from_the_query_fills_a_fresh_form(staff_client: Client) -> None:
    page = page_of(staff_client.get(f"{NEW}?preset=cpu-small"))
    assert selected(page, "device") == "cpu"
    assert input_value(page, "num_generations") == "4"
    assert input_value(page, "max_completion_tokens") == "96"
    unknown = staff_client.get(f"{NEW}?preset=nope")
    assert unknown.status_code == 200
    assert input_value(page_of(unknown), "max_completion_tokens") == "256"  # the default


# -- sections and read-only fields --------------------------------------------------------------


def test_basic_fields_come_first_and_the_rest_is_in_a_closed_advanced_section(
    staff_client: Client,
) -> None:
    page = page_of(staff_client.get(NEW))
    advanced_at = page.index('<details class="card advanced" id="advanced">')
    for name in BASIC_FIELDS:
        assert page.index(f'name="{name}"') < advanced_at, name
    for name in ("top_p", "seed", "judge_check_pairs", "judge_timeout_s", "static_tier"):
        assert page.index(f'name="{name}"') > advanced_at, name
    assert 'name="output_dir"' not in page and 'name="logging_dir"' not in page
    assert "Set by the studio" in page
    assert "disabled" not in page
    assert 'list="policy-models"' in page and '<option value="smollm2-135m-instruct">' in page


def test_report_to_is_an_advanced_select_of_installed_choices_and_logging_dir_is_derived(
    staff_client: Client, settings, tmp_path
) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path
    page = page_of(staff_client.get(NEW))
    assert page.index('name="report_to"') > page.index('id="advanced"')
    select = re.search(r'<select name="report_to".*?</select>', page, re.S)
    assert select, "report_to is not a select"
    assert re.findall(r'<option value="([^"]*)"', select.group(0)) == list(REPORT_TO)
    assert selected(page, "report_to") == "none"
    assert "where report_to writes" in page  # logging_dir: text, not an input

    dataset = make_dataset()
    # A posted logging_dir (not a field) is ignored: the studio puts it in the run directory.
    data = form_data(dataset.pk, report_to="tensorboard", logging_dir="/tmp/elsewhere")
    response = staff_client.post(NEW, data)
    assert response.status_code == 302, page_of(response)
    run = Run.objects.get()
    assert run.config["report_to"] == "tensorboard"
    assert run.config["logging_dir"] == f"{run.output_dir}/tensorboard"

    refused = staff_client.post(NEW, form_data(dataset.pk, name="w", report_to="mlflow"))
    assert refused.status_code == 400
    assert "Select a valid choice. mlflow is not one of the available choices." in page_of(refused)


def test_a_stored_logging_dir_outside_the_runs_directory_is_refused(settings, tmp_path) -> None:
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    config = TrainConfig(policy="smollm2-135m-instruct", logging_dir=str(tmp_path / "else"))
    with pytest.raises(PathNotAllowed, match="must be a file under the runs directory"):
        check_train_config(config)
    config.logging_dir = str(tmp_path / "runs" / "run-1" / "tensorboard")
    check_train_config(config)


def test_advanced_opens_when_it_holds_an_error_and_stays_closed_otherwise(
    staff_client: Client,
) -> None:
    dataset = make_dataset()
    page = page_of(staff_client.post(NEW, form_data(dataset.pk, top_p="2")))
    assert '<details class="card advanced" id="advanced" open>' in page
    page = page_of(staff_client.post(NEW, form_data(dataset.pk, max_steps="0")))
    assert '<details class="card advanced" id="advanced">' in page


# -- every error at once, in plain words --------------------------------------------------------


def test_every_error_is_shown_at_once_next_to_its_field_and_linked_from_the_top(
    staff_client: Client,
) -> None:
    dataset = make_dataset()
    mistakes = {
        "temperature": "0",
        "max_steps": "0",
        "num_generations": "abc",
        "top_p": "2",
        "reward_terms": '{"style": 1}',
        "use_vllm": "colocate",
        "device": "cpu",
    }
    response = staff_client.post(NEW, form_data(dataset.pk, name="", **mistakes))
    assert response.status_code == 400
    page = page_of(response)
    expected = {
        "name": "This field is required",
        "temperature": "Temperature must be above 0",
        "max_steps": "Max steps must be a whole number of at least 1",
        "num_generations": "Enter a whole number",
        "top_p": "Top-p must be above 0 and at most 1",
        "reward_terms": "Reward terms has unknown term 'style'",
        "use_vllm": "Use vLLM needs CUDA",
    }
    start = page.index('id="error-summary"')
    summary = page[start : page.index("</div>", start)]
    for field, message in expected.items():
        at = page.index(f'id="id_{field}_errors"')
        assert message in page[at : at + 400], (field, page[at : at + 400])
        assert f'<a href="#id_{field}">' in summary, field
        assert message in summary, field
    assert '<a href="#id_name">Name</a>' in summary and "None" not in summary
    assert "TrainConfig." not in page and "JudgeSpec." not in page
    assert not Run.objects.exists()


def test_engine_messages_read_as_plain_words() -> None:
    assert (
        plain_message("TrainConfig.min_wins must be an integer >= 1; got 0")
        == "Wins to move up a tier must be a whole number of at least 1; got 0"
    )
    assert plain_message("JudgeSpec.max_retries cannot be negative; got -1") == (
        "Judge max retries cannot be negative; got -1"
    )


def test_a_dataset_without_training_data_is_a_form_error_not_a_500(staff_client: Client) -> None:
    dataset = make_dataset(instructions=2, references=0)
    response = staff_client.post(NEW, form_data(dataset.pk))
    assert response.status_code == 400
    assert "no training instruction with a tiered reference" in page_of(response)


# -- selections of the chosen dataset -----------------------------------------------------------


def test_the_selection_list_holds_only_the_chosen_datasets_selections(
    staff_client: Client,
) -> None:
    essays, poems = make_dataset(), make_dataset("poems")
    mine, theirs = make_selection(essays), make_selection(poems)
    page = page_of(staff_client.get(f"{NEW}?dataset={essays.pk}"))
    field = page[page.index('id="field-selection"') :][:1500]
    assert f'<option value="{mine.pk}"' in field and f'<option value="{theirs.pk}"' not in field
    # The fragment htmx swaps in when the dataset changes.
    fragment = staff_client.get(f"{NEW}selections/?dataset={poems.pk}")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert text.startswith('<div id="field-selection">')
    assert f'<option value="{theirs.pk}"' in text and f'<option value="{mine.pk}"' not in text
    for junk in ("", "abc", "999999"):
        response = staff_client.get(f"{NEW}selections/?dataset={junk}")
        assert response.status_code == 200 and "<option" in response.content.decode()


# -- clone --------------------------------------------------------------------------------------


def launched(client: Client, dataset_pk: int, **overrides: object) -> Run:
    response = client.post(NEW, form_data(dataset_pk, **overrides))
    assert response.status_code == 302, page_of(response)[:2000]
    return Run.objects.order_by("-pk").first()  # type: ignore[return-value]


def test_cloning_a_run_fills_every_field_from_its_config(staff_client: Client) -> None:
    dataset = make_dataset()
    chosen = make_selection(dataset, chosen=2)
    original = launched(
        staff_client,
        dataset.pk,
        name="essays lr",
        selection=chosen.pk,
        max_steps=9,
        learning_rate="0.0003",
        reward_terms='{"length": 0.25}',
        judge_timeout_s="33",
        save_final_model=None,  # unticked
    )
    page = page_of(staff_client.get(f"{NEW}?clone={original.pk}"))
    assert input_value(page, "name") == "essays lr (copy)"
    assert selected(page, "dataset") == str(dataset.pk)
    assert selected(page, "selection") == str(chosen.pk)
    assert input_value(page, "max_steps") == "9" and input_value(page, "learning_rate") == "0.0003"
    assert input_value(page, "judge_timeout_s") == "33.0"
    assert '{"length": 0.25}' in page
    assert re.search(r'<input type="checkbox" name="save_final_model"[^>]*checked', page) is None
    assert f"filled in from run {original.pk}" in page
    # What the cloned form holds, launched untouched, is the original's config.
    form = RunForm(initial=run_clone_initial(original))
    data: dict[str, object] = {}
    for name in ["name", "dataset", "selection", *form.config_fields, *form.judge_fields]:
        value = form[name].value()
        if isinstance(form.fields[name], forms.BooleanField):
            if value:
                data[name] = "on"
            continue
        data[name] = "" if value is None else value
    response = staff_client.post(NEW, data)
    assert response.status_code == 302, page_of(response)[:2000]
    copy = Run.objects.order_by("-pk").first()
    assert copy is not None and copy.pk != original.pk
    assert (copy.name, copy.selection_id) == ("essays lr (copy)", chosen.pk)
    differ = {k for k in original.config if original.config[k] != copy.config[k]}
    assert differ == {"output_dir"}


def test_the_clone_select_on_the_form_fills_it_in(staff_client: Client) -> None:
    dataset = make_dataset()
    original = launched(staff_client, dataset.pk, name="first", max_steps=4)
    response = staff_client.post(
        NEW, {**form_data(dataset.pk, name="", max_steps=99), "clone": original.pk,
              "apply_clone": "1"},
    )  # fmt: skip
    page = page_of(response)
    assert response.status_code == 200 and Run.objects.count() == 1
    assert input_value(page, "name") == "first (copy)" and input_value(page, "max_steps") == "4"


def test_cloning_what_does_not_exist_or_is_not_yours_to_see_fills_nothing(
    staff_client: Client, client: Client, annotator: object
) -> None:
    for junk in ("999999", "abc"):
        response = staff_client.get(f"{NEW}?clone={junk}")
        assert response.status_code == 200
        assert f"There is no run {junk} to copy" in page_of(response)
    dataset = make_dataset()
    run = launched(staff_client, dataset.pk)
    client.force_login(annotator)  # type: ignore[arg-type]
    assert client.get(f"{NEW}?clone={run.pk}").status_code == 403
    assert not selectors.clonable_runs(annotator).exists()


def test_the_run_page_offers_to_clone_the_run(staff_client: Client) -> None:
    dataset = make_dataset()
    run = launched(staff_client, dataset.pk)
    assert (
        f'href="/studio/runs/new/?clone={run.pk}"'
        in staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    )


# -- the time estimate -------------------------------------------------------------------------


def measured_run(dataset: object, policy: str, seconds: list[float], **config: object) -> Run:
    values = {
        "policy": policy,
        "num_generations": 2,
        "prompts_per_step": 2,
        "max_completion_tokens": 48,
        **config,
    }
    run = Run.objects.create(
        name="measured", dataset=dataset, status=Run.Status.SUCCEEDED, config=values
    )
    for step, value in enumerate(seconds, 1):
        StepMetric.objects.create(run=run, step=step, metrics={"step_seconds": value})
    return run


def test_the_estimate_is_the_median_step_time_of_similar_finished_runs(db: None) -> None:
    dataset = make_dataset()
    sizes = {"num_generations": 2, "prompts_per_step": 2, "max_completion_tokens": 48}
    none = selectors.step_time_estimate(policy="smollm2-135m-instruct", max_steps=30, **sizes)
    assert none["median_s"] is None
    measured_run(dataset, "smollm2-135m-instruct", [2.0, 4.0, 100.0])
    measured_run(dataset, "smollm2-135m-instruct", [5.0, 0.0])  # 0: not a measurement
    measured_run(dataset, "other-model", [1000.0])
    measured_run(dataset, "smollm2-135m-instruct", [999.0], max_completion_tokens=256)
    failed = measured_run(dataset, "smollm2-135m-instruct", [999.0])
    Run.objects.filter(pk=failed.pk).update(status=Run.Status.FAILED)
    estimate = selectors.step_time_estimate(policy="smollm2-135m-instruct", max_steps=30, **sizes)
    assert estimate == {"median_s": 4.5, "runs": 2, "steps": 4, "total_s": 135.0}


def test_the_form_shows_the_estimate_and_refreshes_it(staff_client: Client) -> None:
    page = page_of(staff_client.get(NEW))
    assert "no measurement yet" in page
    dataset = make_dataset()
    measured_run(
        dataset, "smollm2-135m-instruct", [12.0, 12.0], num_generations=4, max_completion_tokens=256
    )
    page = page_of(staff_client.get(NEW))  # the form's defaults: 2 x 4 x 256 tokens, 100 steps
    at = page.index('id="estimate"')
    text = re.sub(r"<[^>]+>", "", page[at : at + 2000])
    assert "about 20 min for 100 steps: 12.0 s a step" in text, text
    fragment = staff_client.get(
        f"{NEW}estimate/?policy=smollm2-135m-instruct&num_generations=8&prompts_per_step=2"
        "&max_completion_tokens=256&max_steps=10"
    )
    assert fragment.status_code == 200
    assert "no measurement yet" in fragment.content.decode()
    fragment = staff_client.get(f"{NEW}estimate/?policy=x&num_generations=abc")
    assert fragment.status_code == 200 and "to see an estimate" in fragment.content.decode()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(42, "42 s"), (600, "10 min"), (5400, "1 h 30 min"), (7200, "2 h"), (86400 * 3, "3.0 days")],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_form_object_lists_every_field_once() -> None:
    form = RunForm()
    names = [f.name for f in form.basic_fields()] + [f.name for f in form.advanced_fields()]
    assert len(names) == len(set(names))
    assert set(names) == set(form.config_fields) | set(form.judge_fields)
