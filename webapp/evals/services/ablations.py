"""The paper's ablation grid: arms of selection (margin / difficulty / random / full) x reward
(pairwise / pointwise) x curriculum (dynamic / static at the top tier / random), each arm
trained with several seeds, launched as linked training runs (one ``Run.group``) and
evaluated the same way as each run finishes, beside the base policy on the same held-out
split. The arms are either every combination of the ticked values or, as the paper's
ablations are, one factor at a time from the method's own arm (:func:`grid_arms`).

The study's reads (win rates against the base policy, the table per arm with intervals over
seeds) and the in-process executor are in :mod:`webapp.evals.ablation_study`.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils.text import slugify

from rl_engine.training import TrainConfig
from webapp.evals.models import AblationCell, AblationGrid, EvalRun
from webapp.evals.services.ablation_study import base_eval_ensure, grid_compare, refuse_comparisons
from webapp.evals.services.config import EvalConfigError, build_judge, build_settings
from webapp.evals.services.eval_runs import eval_run_create
from webapp.studio.models import Checkpoint, Dataset, Run, Selection
from webapp.studio.services.runs import RunConfigError, run_create
from workers.dispatch import send
from workers.queues import TaskName

SELECTIONS = tuple(AblationCell.SelectionAxis.values)
REWARDS = tuple(AblationCell.RewardAxis.values)
CURRICULA = tuple(AblationCell.CurriculumAxis.values)
# What a grid trains when the caller names no axis values (the random arms are opt-in).
DEFAULT_SELECTIONS = ("margin", "difficulty", "full")
DEFAULT_CURRICULA = ("dynamic", "static")
DESIGNS = ("product", "one_factor")
# The method's own arm: the one-factor design varies one axis of it at a time.
METHOD_ARM = ("margin", "pairwise", "dynamic")

Arm = tuple[str, str, str]
# How often the grid's watcher looks at its training runs and evaluations.
WATCH_EVERY_S = 30


class AblationError(ValueError):
    """The grid cannot be launched as asked; the message says what to change."""


def grid_arms(
    selections: Sequence[str], rewards: Sequence[str], curricula: Sequence[str],
    design: str = "product",
) -> list[Arm]:  # fmt: skip
    """The arms of a grid: every combination (``product``), or (``one_factor``) the method's
    arm (margin · pairwise · dynamic, where ticked; else the first ticked value of an axis)
    and, for each axis, every other ticked value with the other two axes at the method's."""
    if design not in DESIGNS:
        raise AblationError(f"design must be one of {DESIGNS}; got {design!r}")
    if design == "product":
        return list(itertools.product(selections, rewards, curricula))
    axes = (list(selections), list(rewards), list(curricula))
    center = tuple(m if m in axis else axis[0] for m, axis in zip(METHOD_ARM, axes, strict=True))
    arms: list[Arm] = [center]  # type: ignore[list-item]
    for index, axis in enumerate(axes):
        for value in axis:
            arm = list(center)
            arm[index] = value
            if tuple(arm) not in arms:
                arms.append((arm[0], arm[1], arm[2]))
    return arms


def cell_config(
    base: dict[str, Any], reward: str, curriculum: str, seed: int | None = None
) -> dict[str, Any]:
    """The TrainConfig dict of one cell: ``base`` with the cell's reward, curriculum (static =
    the top tier, the paper's static baseline) and seed."""
    config = dict(base)
    config["curriculum"] = curriculum
    if curriculum != "static":
        config["static_tier"] = None
    config["reward_kind"] = reward
    if seed is not None:
        config["seed"] = seed
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
    selections: Sequence[str] = DEFAULT_SELECTIONS,
    rewards: Sequence[str] = REWARDS,
    curricula: Sequence[str] = DEFAULT_CURRICULA,
    design: str = "product",
    arms: Sequence[Sequence[str]] | None = None,
    seeds: Sequence[int] | None = None,
    margin_selection: Selection | None = None,
    difficulty_selection: Selection | None = None,
    random_selection: Selection | None = None,
    eval_benchmark: str = "writingbench",
    eval_split: str = "eval",
    eval_settings: dict[str, Any] | None = None,
    eval_judge: dict[str, Any] | None = None,
    eval_limit: int | None = None,
    eval_baseline_tier: int | None = None,
    created_by: Any = None,
    enqueue: bool = True,
) -> AblationGrid:
    """Create one training run per cell (arm x seed) of the grid (linked by ``Run.group``) and
    start the watcher that evaluates each run when it finishes, and the base policy. ``arms``
    (selection, reward, curriculum triples) overrides the axes and ``design``; ``seeds``
    defaults to the base config's seed. All or nothing."""
    if arms is not None:
        arm_list: list[Arm] = []
        for index, arm in enumerate(arms):
            if len(arm) != 3:
                raise AblationError(
                    f"arm {index + 1}: give [selection, reward, curriculum], got {list(arm)!r}"
                )
            arm_list.append((str(arm[0]), str(arm[1]), str(arm[2])))
        if not arm_list:
            raise AblationError("give at least one arm")
        selections = sorted({a[0] for a in arm_list})
        rewards = sorted({a[1] for a in arm_list})
        curricula = sorted({a[2] for a in arm_list})
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
    if arms is None:
        arm_list = grid_arms(selections, rewards, curricula, design)
    if len(set(arm_list)) != len(arm_list):
        raise AblationError("an arm is listed twice")
    seed_list = [int(base_config.get("seed", 0))] if seeds is None else list(seeds)
    if not seed_list:
        raise AblationError("give at least one seed")
    if len(set(seed_list)) != len(seed_list):
        raise AblationError(f"a seed is listed twice: {seed_list}")
    strategies = {
        "margin": margin_selection,
        "difficulty": difficulty_selection,
        "random": random_selection,
        "full": None,
    }
    for strategy in ("margin", "difficulty", "random"):
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
        seeds=seed_list,
        created_by=created_by if getattr(created_by, "is_authenticated", False) else None,
    )
    several = len(seed_list) > 1
    for (selection, reward, curriculum), seed in itertools.product(arm_list, seed_list):
        config = cell_config(base_config, reward, curriculum, seed if several else None)
        arm = f"{selection} · {reward} · {curriculum}"
        try:
            run = run_create(
                name=f"{grid.name}: {arm}" + (f" · seed {seed}" if several else ""),
                dataset=dataset,
                config=config,
                owner=created_by,
                selection=strategies[selection],
                group=group,
                enqueue=enqueue,
            )
        except RunConfigError as error:
            raise AblationError(f"cell {arm}: {error}") from None
        AblationCell.objects.create(
            grid=grid, selection=selection, reward=reward, curriculum=curriculum,
            seed=int(config.get("seed", 0)), selection_used=strategies[selection], run=run,
        )  # fmt: skip
    if enqueue:
        pk = grid.pk
        transaction.on_commit(lambda: send(TaskName.WATCH_ABLATION_GRID, args=[pk]))
    return grid


@dataclass
class GridProgress:
    active_runs: int
    created: int
    # Evaluations still running (the base policy's included), the base policy's evaluation
    # created by this call, and the cells compared with the base policy by this call.
    pending: int = 0
    base_created: bool = False
    compared: int = 0


def final_system(run: Run) -> dict[str, Any] | None:
    """How to evaluate a finished run: the model it ended with (``final/``), else its latest
    checkpoint."""
    checkpoint = Checkpoint.objects.filter(run=run, deleted=False).order_by("-step").first()
    final = Path(run.output_dir or "") / "final"
    if (final / "config.json").is_file():
        return {"system_kind": EvalRun.SystemKind.BASE_MODEL, "base_model": str(final)}
    if checkpoint is not None:
        return {"system_kind": EvalRun.SystemKind.CHECKPOINT, "checkpoint": checkpoint}
    return None


def ablation_grid_advance(grid_id: int, enqueue: bool = True, compare: bool = True) -> GridProgress:
    """Create the base policy's evaluation and that of each cell whose run succeeded and has
    none yet; with ``compare``, compare each evaluated cell with the base policy."""
    grid = AblationGrid.objects.get(pk=grid_id)
    base_created = base_eval_ensure(grid, enqueue=enqueue)
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
                    name=f"{grid.name}: {cell.seed_label}",
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
        except EvalConfigError as error:
            refuse_comparisons(
                grid, f"the held-out evaluation of {cell.seed_label} was refused: {error}", cell.pk
            )
            continue
        created += 1
    compared = grid_compare(grid) if compare else 0
    pending = EvalRun.objects.filter(
        Q(ablation_cells__grid=grid) | Q(pk=grid.base_eval_run_id or 0),
        status__in=EvalRun.ACTIVE,
    ).distinct().count()  # fmt: skip
    return GridProgress(active, created, pending, base_created, compared)


def ablation_grid_watch(grid_id: int) -> GridProgress:
    """What the grid's watcher task does: advance the grid (see :func:`ablation_grid_advance`),
    and look again in ``WATCH_EVERY_S`` while some training run or evaluation is still
    active."""
    progress = ablation_grid_advance(grid_id)
    if progress.active_runs or progress.pending:
        send(TaskName.WATCH_ABLATION_GRID, args=[grid_id], countdown=WATCH_EVERY_S)
    return progress
