"""The paper's ablation grid: selection (margin / difficulty / full) x reward (pairwise /
pointwise) x curriculum (dynamic / static), launched as linked training runs (one
``Run.group``) and evaluated the same way as each run finishes.

The reward axis needs a reward-kind setting in ``TrainConfig``. Which field carries it is
looked up by name (:data:`REWARD_KIND_FIELDS`); while training has none, a grid asking for the
pointwise reward is refused with a message saying so, rather than training pairwise runs
under a pointwise label.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from rl_engine.training import TrainConfig
from webapp.evals.models import AblationCell, AblationGrid, EvalRun
from webapp.evals.services.config import EvalConfigError, build_judge, build_settings
from webapp.evals.services.eval_runs import eval_run_create
from webapp.studio.models import Checkpoint, Dataset, Run, Selection

SELECTIONS = tuple(AblationCell.SelectionAxis.values)
REWARDS = tuple(AblationCell.RewardAxis.values)
CURRICULA = tuple(AblationCell.CurriculumAxis.values)


class AblationError(ValueError):
    """The grid cannot be launched as asked; the message says what to change."""


def cell_config(base: dict[str, Any], reward: str, curriculum: str) -> dict[str, Any]:
    """The TrainConfig dict of one cell: ``base`` with the cell's reward and curriculum."""
    config = dict(base)
    config["curriculum"] = curriculum
    if curriculum != "static":
        config["static_tier"] = None
    config["reward_kind"] = reward
    try:
        return TrainConfig.from_dict(config).to_dict()
    except (TypeError, ValueError) as error:
        raise AblationError(f"cell reward={reward}, curriculum={curriculum}: {error}") from None


@transaction.atomic
def ablation_grid_create(
    *,
    name: str,
    dataset: Dataset,
    base_config: dict[str, Any],
    selections: Sequence[str] = SELECTIONS,
    rewards: Sequence[str] = REWARDS,
    curricula: Sequence[str] = CURRICULA,
    margin_selection: Selection | None = None,
    difficulty_selection: Selection | None = None,
    eval_benchmark: str = "writingbench",
    eval_split: str = "eval",
    eval_settings: dict[str, Any] | None = None,
    eval_judge: dict[str, Any] | None = None,
    eval_limit: int | None = None,
    eval_baseline_tier: int | None = None,
    created_by: Any = None,
    enqueue: bool = True,
) -> AblationGrid:
    """Create one training run per cell of the grid (linked by ``Run.group``) and start the
    watcher that evaluates each run when it finishes. All or nothing."""
    from webapp.studio.services.runs import RunConfigError, run_create

    for axis, chosen, allowed in (
        ("selection", selections, SELECTIONS),
        ("reward", rewards, REWARDS),
        ("curriculum", curricula, CURRICULA),
    ):
        if not chosen:
            raise AblationError(f"choose at least one {axis} value")
        unknown = set(chosen) - set(allowed)
        if unknown:
            raise AblationError(f"unknown {axis} value(s) {sorted(unknown)}; use {allowed}")
    strategies = {"margin": margin_selection, "difficulty": difficulty_selection, "full": None}
    for strategy in ("margin", "difficulty"):
        chosen_selection = strategies[strategy]
        if strategy not in selections:
            continue
        if chosen_selection is None:
            raise AblationError(
                f"the {strategy} cells need a {strategy} selection of {dataset.name!r}: run "
                "data selection on the dataset first"
            )
        if chosen_selection.dataset_id != dataset.pk or chosen_selection.strategy != strategy:
            raise AblationError(
                f"selection {chosen_selection.pk} is not a {strategy} selection of {dataset.name!r}"
            )
    build_settings(eval_benchmark, eval_settings)  # validate before any run exists
    if eval_benchmark == "pairwise" and eval_baseline_tier is None:
        raise AblationError("a pairwise evaluation needs the baseline reference tier")
    judge = build_judge(eval_judge).to_dict()
    group = f"ablation-{slugify(name)[:40]}-{uuid.uuid4().hex[:8]}"
    grid = AblationGrid.objects.create(
        name=name.strip() or group,
        group=group,
        dataset=dataset,
        base_config=base_config,
        eval_benchmark=eval_benchmark,
        eval_split=eval_split,
        eval_settings=dict(eval_settings or {}),
        eval_judge=judge,
        eval_limit=eval_limit,
        eval_baseline_tier=eval_baseline_tier if eval_benchmark == "pairwise" else None,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    for selection, reward, curriculum in itertools.product(selections, rewards, curricula):
        config = cell_config(base_config, reward, curriculum)
        try:
            run = run_create(
                name=f"{grid.name}: {selection} · {reward} · {curriculum}",
                dataset=dataset,
                config=config,
                owner=created_by,
                selection=strategies[selection],
                group=group,
                enqueue=enqueue,
            )
        except RunConfigError as error:
            raise AblationError(f"cell {selection} · {reward} · {curriculum}: {error}") from None
        AblationCell.objects.create(
            grid=grid, selection=selection, reward=reward, curriculum=curriculum,
            selection_used=strategies[selection], run=run,
        )  # fmt: skip
    if enqueue:
        from workers.tasks.evaluation import watch_ablation_grid

        pk = grid.pk
        transaction.on_commit(lambda: watch_ablation_grid.apply_async(args=[pk]))
    return grid


@dataclass
class GridProgress:
    active_runs: int
    created: int


def final_system(run: Run) -> dict[str, Any] | None:
    """How to evaluate a finished run: the model it ended with (``final/``), else its latest
    checkpoint."""
    checkpoint = Checkpoint.objects.filter(run=run).order_by("-step").first()
    final = Path(run.output_dir or "") / "final"
    if (final / "config.json").is_file():
        return {"system_kind": EvalRun.SystemKind.BASE_MODEL, "base_model": str(final)}
    if checkpoint is not None:
        return {"system_kind": EvalRun.SystemKind.CHECKPOINT, "checkpoint": checkpoint}
    return None


def ablation_grid_advance(grid_id: int, enqueue: bool = True) -> GridProgress:
    """Create the evaluation of each cell whose run succeeded and has none yet."""
    grid = AblationGrid.objects.get(pk=grid_id)
    active = created = 0
    for cell in grid.cells.select_related("run").filter(eval_run__isnull=True):
        run = cell.run
        if run.is_active:
            active += 1
            continue
        if run.status != Run.Status.SUCCEEDED:
            continue
        system = final_system(run)
        if system is None:
            continue
        try:
            with transaction.atomic():
                eval_run = eval_run_create(
                    name=f"{grid.name}: {cell.label}",
                    benchmark=grid.eval_benchmark,
                    dataset=grid.dataset,
                    split=grid.eval_split,
                    settings=grid.eval_settings,
                    judge=grid.eval_judge,
                    limit=grid.eval_limit,
                    training_run=run,
                    baseline_tier=grid.eval_baseline_tier,
                    created_by=grid.created_by,
                    enqueue=enqueue,
                    **system,
                )
                updated = AblationCell.objects.filter(pk=cell.pk, eval_run__isnull=True).update(
                    eval_run=eval_run
                )
                if updated != 1:  # another watcher got there first
                    transaction.set_rollback(True)
                    continue
        except EvalConfigError:
            continue
        created += 1
    return GridProgress(active, created)
