"""Launch the demo run (SmolLM2, HeuristicJudge, short rollouts) unless one is active."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.urls import NoReverseMatch, reverse

from rl_engine.judging.endpoints import default_registry
from webapp.studio.demo import DATASET_NAME, RUN_CONFIG, RUN_NAME
from webapp.studio.models import Dataset, Run
from webapp.studio.services.runs import run_create


class Command(BaseCommand):
    help = "Queue a short GRPO run on the demo dataset that visibly progresses on 2 CPU cores."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--steps", type=int, default=RUN_CONFIG["max_steps"])

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = Dataset.objects.filter(name=DATASET_NAME).first()
        if dataset is None:
            raise CommandError("run `manage.py demo_setup` first: the demo dataset is missing")
        active = Run.objects.filter(dataset=dataset, status__in=Run.ACTIVE).first()
        if active is not None:
            note = ""
            if active.status == Run.Status.RUNNING:
                # Left running by an earlier demo that was stopped: the worker's beat sends it
                # again once its heartbeat is stale, and it resumes from its last checkpoint.
                note = " (an interrupted run resumes from its last checkpoint within minutes)"
            self.stdout.write(
                f"Demo run {active.pk} is already {active.status}: {run_url(active)}{note}"
            )
            return
        owner = get_user_model().objects.filter(username="researcher").first()
        # The deployment's default judge (the offline heuristic unless WRITING_RL_ENDPOINTS or
        # WRITING_RL_JUDGE_* name another), so one declared endpoint is all a real judge needs.
        registry = default_registry()
        judge = {"endpoint": registry.default_judge, "model": registry.default_model}
        run = run_create(
            name=RUN_NAME,
            dataset=dataset,
            config={**RUN_CONFIG, "judge": judge, "max_steps": options["steps"]},
            owner=owner,
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo run {run.pk} queued ({run.total_steps} GRPO steps on "
                f"{run.curriculum.count()} instructions): {run_url(run)}"
            )
        )


def run_url(run: Run) -> str:
    try:
        return reverse("studio:run_detail", args=[run.pk])
    except NoReverseMatch:  # the dashboard is not mounted; the admin always is
        return f"/admin/studio/run/{run.pk}/change/"
