"""The ablation grid: one form, linked training runs, evaluated the same way, one table."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from tests.webapp.evals.factories import make_checkpoint, make_dataset, make_instruction
from webapp.evals.models import AblationGrid, EvalRun
from webapp.evals.services.ablations import (
    AblationError,
    ablation_grid_advance,
    ablation_grid_create,
    grid_arms,
)
from webapp.studio.models import Dataset, Run, Selection, SelectionEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset() -> Dataset:
    dataset = make_dataset()
    train = [
        make_instruction(dataset, split="train", references=["weak", "strong"]) for _ in range(3)
    ]
    make_instruction(dataset, split="eval", required_words=100)
    for strategy, chosen in (("margin", train[:2]), ("difficulty", train[1:])):
        selection = Selection.objects.create(dataset=dataset, strategy=strategy, policy="p", k=2)
        for instruction in train:
            SelectionEntry.objects.create(
                selection=selection, instruction=instruction, chosen=instruction in chosen
            )
    return dataset


def selections(dataset: Dataset) -> dict[str, Selection]:
    return {
        "margin_selection": Selection.objects.get(dataset=dataset, strategy="margin"),
        "difficulty_selection": Selection.objects.get(dataset=dataset, strategy="difficulty"),
    }


# A known policy name: run_create refuses a policy that is neither known nor a checkpoint
# directory under the model roots (nothing is trained here).
POLICY = "smollm2-135m-instruct"
BASE = {"policy": POLICY, "max_steps": 4, "num_generations": 2, "judge": {"kind": "heuristic"}}


def test_it_launches_the_grid_as_linked_runs(dataset: Dataset) -> None:
    grid = ablation_grid_create(
        name="paper grid", dataset=dataset, base_config=BASE, rewards=["pairwise"],
        eval_benchmark="longbench_write", enqueue=False, **selections(dataset),
    )  # fmt: skip
    cells = list(grid.cells.select_related("run"))
    assert len(cells) == 3 * 1 * 2
    assert {(c.selection, c.curriculum) for c in cells} == {
        (s, c) for s in ("margin", "difficulty", "full") for c in ("dynamic", "static")
    }
    runs = Run.objects.filter(group=grid.group)
    assert runs.count() == 6
    for cell in cells:
        assert cell.run.config["curriculum"] == cell.curriculum
        assert cell.run.config["max_steps"] == 4
        expected = None if cell.selection == "full" else cell.selection
        assert (cell.run.selection.strategy if cell.run.selection else None) == expected
        assert cell.run.curriculum.count() == (3 if cell.selection == "full" else 2)


def test_it_passes_each_cells_reward_kind_to_training(dataset: Dataset) -> None:
    grid = ablation_grid_create(
        name="g", dataset=dataset, base_config=BASE, eval_benchmark="longbench_write",
        enqueue=False, **selections(dataset),
    )  # fmt: skip
    assert {(c.reward, c.run.config["reward_kind"]) for c in grid.cells.all()} == {
        ("pairwise", "pairwise"),
        ("pointwise", "pointwise"),
    }


def test_it_needs_the_selections_its_cells_train_on(dataset: Dataset) -> None:
    with pytest.raises(AblationError, match="need a margin selection"):
        ablation_grid_create(
            name="g", dataset=dataset, base_config=BASE, rewards=["pairwise"],
            eval_benchmark="writingbench", enqueue=False,
        )  # fmt: skip
    assert Run.objects.count() == 0


def test_it_evaluates_finished_runs_and_fills_one_table(
    dataset: Dataset, staff_client: Client
) -> None:
    grid = ablation_grid_create(
        name="grid", dataset=dataset, base_config=BASE, selections=["margin", "full"],
        rewards=["pairwise"], curricula=["dynamic"], eval_benchmark="longbench_write",
        eval_limit=5, enqueue=False, **selections(dataset),
    )  # fmt: skip
    margin, full = grid.cells.order_by("selection")[1], grid.cells.order_by("selection")[0]
    assert (margin.selection, full.selection) == ("margin", "full")
    Run.objects.filter(pk=margin.run_id).update(status="succeeded", current_step=4)
    make_checkpoint(margin.run, 2)
    newest = make_checkpoint(margin.run, 4)

    progress = ablation_grid_advance(grid.pk, enqueue=False)
    assert (progress.created, progress.active_runs) == (1, 1)  # the full run still queued
    margin.refresh_from_db()
    eval_run = margin.eval_run
    assert eval_run.checkpoint == newest and eval_run.training_run_id == margin.run_id
    assert eval_run.benchmark == "longbench_write" and eval_run.limit == 5
    assert ablation_grid_advance(grid.pk, enqueue=False).created == 0  # not twice

    EvalRun.objects.filter(pk=eval_run.pk).update(
        status="succeeded", aggregates={"score": 42.0, "S_l": 30.0, "S_q": 54.0, "S_bar": 42.0}
    )
    html = staff_client.get(f"/evals/ablations/{grid.pk}/").content.decode()
    assert "margin · pairwise · dynamic" in html and "full · pairwise · dynamic" in html
    assert ">42.0</a>" in html and ">54.0</a>" in html
    body = b"".join(staff_client.get(f"/evals/ablations/{grid.pk}/results.csv").streaming_content)
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["system", "selection", "reward", "curriculum", "run status",
                       "LongBench-Write S_l", "S_q", "S̄"]  # fmt: skip
    assert ["margin · pairwise · dynamic", "margin", "pairwise", "dynamic", "succeeded",
            "30.0000", "54.0000", "42.0000"] in rows  # fmt: skip
    assert ["full · pairwise · dynamic", "full", "pairwise", "dynamic", "queued",
            "", "", ""] in rows  # fmt: skip


def test_the_form_launches_a_grid(
    dataset: Dataset, staff_client: Client, django_capture_on_commit_callbacks
) -> None:
    chosen = selections(dataset)
    form = {
        "name": "from the form", "dataset": dataset.pk, "selections": ["margin", "difficulty"],
        "rewards": ["pairwise"], "curricula": ["dynamic", "static"],
        "margin_selection": chosen["margin_selection"].pk,
        "difficulty_selection": chosen["difficulty_selection"].pk,
        "policy": POLICY, "algorithm": "grpo", "max_steps": 3, "prompts_per_step": 1,
        "num_generations": 2, "max_completion_tokens": 16, "learning_rate": 1e-5, "seed": 0,
        "judge_endpoint": "heuristic", "eval_benchmark": "longbench_write", "eval_split": "eval",
        "eval_max_new_tokens": 32,
    }  # fmt: skip
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post("/evals/ablations/new/", form)
    grid = AblationGrid.objects.get()
    assert response["Location"] == f"/evals/ablations/{grid.pk}/"
    assert grid.cells.count() == 4
    assert len(callbacks) == 4 + 1  # four training runs and the grid's watcher
    assert grid.eval_settings == {"max_new_tokens": 32}
    response = staff_client.post("/evals/ablations/new/", {**form, "selections": ["full"],
                                                           "rewards": ["pointwise"]})  # fmt: skip
    assert response.status_code == 302
    assert Run.objects.filter(config__reward_kind="pointwise").count() == 2


def test_one_factor_arms_vary_one_axis_of_the_method_at_a_time() -> None:
    arms = grid_arms(
        ["margin", "difficulty", "random"], ["pairwise", "pointwise"],
        ["dynamic", "static", "random"], "one_factor",
    )  # fmt: skip
    assert arms == [
        ("margin", "pairwise", "dynamic"),
        ("difficulty", "pairwise", "dynamic"),
        ("random", "pairwise", "dynamic"),
        ("margin", "pointwise", "dynamic"),
        ("margin", "pairwise", "static"),
        ("margin", "pairwise", "random"),
    ]
    assert len(grid_arms(["margin", "full"], ["pairwise"], ["dynamic", "static"])) == 4
    with pytest.raises(AblationError, match="design must be one of"):
        grid_arms(["margin"], ["pairwise"], ["dynamic"], "latin square")


def test_the_form_launches_seeded_one_factor_arms(dataset: Dataset, staff_client: Client) -> None:
    chosen = selections(dataset)
    form = {
        "name": "seeded", "dataset": dataset.pk, "selections": ["margin", "full"],
        "rewards": ["pairwise"], "curricula": ["dynamic", "static", "random"],
        "design": "one_factor", "seeds": "3, 5",
        "margin_selection": chosen["margin_selection"].pk,
        "policy": POLICY, "algorithm": "grpo", "max_steps": 3, "prompts_per_step": 1,
        "num_generations": 2, "max_completion_tokens": 16, "learning_rate": 1e-5, "seed": 0,
        "judge_endpoint": "heuristic", "eval_benchmark": "longbench_write", "eval_split": "eval",
        "eval_max_new_tokens": 32,
    }  # fmt: skip
    response = staff_client.post("/evals/ablations/new/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    grid = AblationGrid.objects.get()
    cells = {(c.label, c.seed, c.run.config["seed"]) for c in grid.cells.select_related("run")}
    arms = ["margin · pairwise · dynamic", "full · pairwise · dynamic",
            "margin · pairwise · static", "margin · pairwise · random"]  # fmt: skip
    assert cells == {(arm, seed, seed) for arm in arms for seed in (3, 5)}
    assert grid.seeds == [3, 5]
    static = grid.cells.filter(curriculum="static").first()
    assert static.run.config["static_tier"] is None  # the top tier
    bad = staff_client.post("/evals/ablations/new/", {**form, "name": "x", "seeds": "1 one"})
    assert bad.status_code == 400 and "give whole numbers" in bad.content.decode()


def test_advancing_a_grid_evaluates_the_base_policy_once(dataset: Dataset) -> None:
    grid = ablation_grid_create(
        name="base", dataset=dataset, base_config=BASE, selections=["full"],
        rewards=["pairwise"], curricula=["dynamic"], seeds=[0, 1],
        eval_benchmark="longbench_write", enqueue=False,
    )  # fmt: skip
    first = ablation_grid_advance(grid.pk, enqueue=False)
    assert first.base_created and first.pending == 1 and first.active_runs == 2
    grid.refresh_from_db()
    base = grid.base_eval_run
    assert (base.system_kind, base.base_model, base.split) == ("base_model", POLICY, "eval")
    assert not ablation_grid_advance(grid.pk, enqueue=False).base_created
    assert EvalRun.objects.count() == 1
