"""Launch a training run from a JSON config file: on the gpu queue, or in-process (--sync)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rl_engine.training import StepMetrics
from webapp.studio.management.commands.export_dataset import find_dataset
from webapp.studio.models import Run, Selection
from webapp.studio.services.leases import worker_name
from webapp.studio.services.run_execution import run_execute
from webapp.studio.services.runs import RunConfigError, run_claim, run_create


class ProgressBar:
    """Wraps a reporter and prints one line per step: the bar, reward, win rate, tiers."""

    def __init__(self, inner: Any, total: int, stream: Any, width: int = 30) -> None:
        self.inner, self.total, self.stream, self.width = inner, max(total, 1), stream, width

    def on_step(self, metrics: StepMetrics) -> None:
        self.inner.on_step(metrics)
        done = min(metrics.step / self.total, 1.0)
        filled = int(done * self.width)
        reward = "-" if metrics.reward_mean is None else f"{metrics.reward_mean:.2f}"
        # No verdict in the step is "unknown", never "0%".
        wins = "unknown" if metrics.win_rate is None else f"{metrics.win_rate:.0%}"
        self.stream.write(
            f"[{'#' * filled}{'.' * (self.width - filled)}] step {metrics.step}/{self.total} "
            f"reward {reward} win {wins} tiers {metrics.tier_histogram} "
            f"({metrics.step_seconds:.1f} s/step)"
        )

    def on_judge_wait(self, wait: Any) -> None:
        on_judge_wait = getattr(self.inner, "on_judge_wait", None)
        if callable(on_judge_wait):
            on_judge_wait(wait)
        if wait is not None:
            self.stream.write(
                f"waiting for judge: step {wait.step}, {wait.invalid_rate:.0%} without a verdict, "
                f"{wait.waited_s:.0f}/{wait.budget_s:.0f} s; last error: {wait.last_error}"
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Command(BaseCommand):
    help = (
        "Create a run from a JSON file and train it: enqueued on the gpu queue, or in this "
        "process with --sync (with a progress bar). The file is either a TrainConfig dict (then "
        "give --dataset) or {'name', 'dataset', 'selection', 'config': TrainConfig dict}."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--config", required=True, help="JSON file.")
        parser.add_argument("--dataset", help="Dataset name or id (overrides the file's).")
        parser.add_argument("--name", help="Run name (overrides the file's).")
        parser.add_argument("--selection", type=int, help="Train only this selection's choice.")
        parser.add_argument("--sync", action="store_true", help="Train here, now.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["config"])
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CommandError(f"{path}: cannot read the config: {error}", returncode=2) from None
        if not isinstance(payload, dict):
            raise CommandError(f"{path}: must hold a JSON object", returncode=2)
        if "config" in payload:
            config = payload["config"]
            dataset_name = options["dataset"] or payload.get("dataset")
            name = options["name"] or payload.get("name") or path.stem
            selection_id = options["selection"] or payload.get("selection")
        else:
            config, dataset_name = payload, options["dataset"]
            name, selection_id = options["name"] or path.stem, options["selection"]
        if not dataset_name:
            raise CommandError(
                "name the dataset: --dataset NAME or 'dataset' in the file", returncode=2
            )
        dataset = find_dataset(str(dataset_name))
        selection = None
        if selection_id is not None:
            selection = Selection.objects.filter(pk=selection_id, dataset=dataset).first()
            if selection is None:
                raise CommandError(f"no selection {selection_id} on {dataset.name!r}", returncode=2)
        try:
            run = run_create(
                name=name, dataset=dataset, config=config, selection=selection,
                enqueue=not options["sync"],
            )  # fmt: skip
        except RunConfigError as error:
            raise CommandError(f"{path}: {error}", returncode=2) from None
        if not options["sync"]:
            self.stdout.write(
                self.style.SUCCESS(f"Run {run.pk} ({run.name!r}) queued on the gpu queue")
            )
            return
        worker = worker_name()
        if not run_claim(run.pk, worker=worker):
            raise CommandError(f"run {run.pk} was claimed by someone else")
        self.stdout.write(f"Run {run.pk} ({run.name!r}): training in this process")
        outcome = run_execute(
            run.pk,
            worker=worker,
            wrap_reporter=lambda inner: ProgressBar(inner, run.total_steps, self.stdout),
        )
        self.stdout.write("")
        run.refresh_from_db()
        if run.status != Run.Status.SUCCEEDED:
            raise CommandError(f"run {run.pk} ended {run.status}: {run.error or outcome}")
        self.stdout.write(
            self.style.SUCCESS(f"Run {run.pk} succeeded after {run.current_step} steps")
        )
