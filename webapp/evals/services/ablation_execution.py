"""Running an ablation study: launch the grid a config file describes, or execute a grid in
this process (scripts, benchmarks, tests; a deployed studio runs the same steps on its
workers)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webapp.evals.ablation_results import StudyTable, ablation_results
from webapp.evals.models import AblationGrid, EvalRun
from webapp.evals.services.ablation_study import load_study_config
from webapp.evals.services.ablations import ablation_grid_advance, ablation_grid_create
from webapp.evals.services.execution import eval_run_execute
from webapp.studio.models import Run
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import run_claim


def ablation_study_launch(
    path: Path, *, created_by: Any = None, enqueue: bool = True, **overrides: Any
) -> AblationGrid:
    """Launch the study a config file describes: the same grid the ablation form launches
    (training runs on the GPU queue and the evaluation watcher when ``enqueue``)."""
    kwargs = {**load_study_config(path), **overrides}
    return ablation_grid_create(**kwargs, created_by=created_by, enqueue=enqueue)


# -- in-process execution ----------------------------------------------------------------------


def ablation_grid_execute(
    grid_id: int, *, worker: str = "inline", say: Callable[[str], None] | None = None
) -> StudyTable:
    """Run a grid created with ``enqueue=False`` in this process: the base policy's
    evaluation, then each cell's training, held-out evaluation and comparison with the base
    policy, seed by seed (every arm's first seed before any arm's second, so a study stopped
    early still has the same seeds for every arm). For scripts, benchmarks and tests; a
    deployed studio runs the same steps on its workers."""

    def note(message: str) -> None:
        if say is not None:
            say(message)

    grid = AblationGrid.objects.get(pk=grid_id)
    ablation_grid_advance(grid.pk, enqueue=False, compare=False)
    grid.refresh_from_db()
    if grid.base_eval_run_id and grid.base_eval_run.status == EvalRun.Status.QUEUED:  # type: ignore[union-attr]
        started = time.perf_counter()
        base = eval_run_execute(grid.base_eval_run_id)
        note(f"base policy evaluated: {base.status} ({time.perf_counter() - started:.0f} s)")
    cells = list(grid.cells.select_related("run").order_by("seed", "id"))
    for index, cell in enumerate(cells, start=1):
        lease = (
            run_claim(cell.run_id, worker=worker) if cell.run.status == Run.Status.QUEUED else None
        )
        if lease:
            started = time.perf_counter()
            outcome = run_execute(cell.run_id, worker=worker, lease=lease)
            note(
                f"[{index}/{len(cells)}] {cell.seed_label}: training {outcome['status']} "
                f"({time.perf_counter() - started:.0f} s)"
            )
        ablation_grid_advance(grid.pk, enqueue=False, compare=False)
        cell.refresh_from_db()
        if cell.eval_run_id and cell.eval_run.status == EvalRun.Status.QUEUED:  # type: ignore[union-attr]
            started = time.perf_counter()
            evaluated = eval_run_execute(cell.eval_run_id)
            note(
                f"[{index}/{len(cells)}] {cell.seed_label}: evaluation {evaluated.status} "
                f"({time.perf_counter() - started:.0f} s)"
            )
            ablation_grid_advance(grid.pk, enqueue=False, compare=True)
    ablation_grid_advance(grid.pk, enqueue=False, compare=True)
    grid.refresh_from_db()
    return ablation_results(grid)
