"""Evaluate a training run: its chosen checkpoints plus the base policy, on the same items."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.evals.models import LongInputBenchmark
from webapp.evals.run_evaluations import run_evaluation_create
from webapp.evals.services.config import EvalConfigError
from webapp.studio.models import Dataset, Run


class Command(BaseCommand):
    help = (
        "Queue one evaluation launch over a training run: each --benchmarks kind on the chosen "
        "--checkpoints (all, last, none or steps like 100,200) plus the base policy, every "
        "system on the same items. Prints the page with the per-checkpoint curves and table."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("run", type=int, help="Training run id.")
        parser.add_argument(
            "--benchmarks", required=True,
            help="Comma-separated: writingbench, longbench_write, creative, longbench_v2, "
            "pairwise.",
        )  # fmt: skip
        parser.add_argument("--checkpoints", default="all", help="all | last | none | N,M")
        parser.add_argument("--no-base", action="store_true", help="Leave the base policy out.")
        parser.add_argument("--dataset", type=int, help="Dataset id (default: the run's).")
        parser.add_argument("--split", help="train, eval, ... ('' = every split; default eval).")
        parser.add_argument("--long-input", type=int, help="Long-input benchmark file id.")
        parser.add_argument("--baseline-tier", type=int, help="Pairwise: the reference tier.")
        parser.add_argument("--limit", type=int, help="At most this many items.")
        parser.add_argument("--max-new-tokens", type=int, help="Generation length.")
        parser.add_argument(
            "--judge-kind",
            help="the judge endpoint's name: heuristic, local or a declared one "
            "(default: the deployment's).",
        )
        parser.add_argument("--judge-model", default="")
        parser.add_argument("--judge-base-url", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = Run.objects.get(pk=options["run"])
        except Run.DoesNotExist:
            raise CommandError(f"no training run {options['run']}") from None
        dataset = long_input = None
        if options.get("dataset") is not None:
            dataset = Dataset.objects.filter(pk=options["dataset"]).first()
            if dataset is None:
                raise CommandError(f"--dataset: no dataset {options['dataset']}")
        if options.get("long_input") is not None:
            long_input = LongInputBenchmark.objects.filter(pk=options["long_input"]).first()
            if long_input is None:
                raise CommandError(f"--long-input: no benchmark file {options['long_input']}")
        judge = None
        if options.get("judge_kind"):
            # A declared endpoint's name ("heuristic", "local", or one in WRITING_RL_ENDPOINTS).
            judge = {"endpoint": options["judge_kind"], "model": options["judge_model"]}
            if options["judge_base_url"]:
                judge["base_url"] = options["judge_base_url"]
        settings = {}
        if options.get("max_new_tokens"):
            settings["max_new_tokens"] = options["max_new_tokens"]
        try:
            evaluation = run_evaluation_create(
                run=run,
                benchmarks=[b.strip() for b in options["benchmarks"].split(",") if b.strip()],
                checkpoints=options["checkpoints"],
                include_base=not options["no_base"],
                dataset=dataset,
                split=options.get("split"),
                long_input=long_input,
                baseline_tier=options.get("baseline_tier"),
                limit=options.get("limit"),
                settings=settings,
                judge=judge,
            )
        except EvalConfigError as error:
            raise CommandError(str(error)) from None
        count = evaluation.members.count()
        steps = ", ".join(map(str, evaluation.steps)) or "none"
        self.stdout.write(
            f"queued {count} evaluation(s) for run {run.pk} (steps {steps}"
            f"{' + base policy' if evaluation.base_policy else ''}); results at "
            f"/evals/run-evaluations/{evaluation.pk}/"
        )
