"""Check a judge on a dataset's reference pairs (both orders) and keep the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rl_engine.judging.check import JudgeCheckThresholds
from rl_engine.training import TrainConfig
from webapp.studio.management.commands.export_dataset import find_dataset
from webapp.studio.models import Run
from webapp.studio.services.judge_check import (
    DEFAULT_PAIRS,
    MAX_PAIRS,
    JudgeCheckError,
    judge_check_report,
    judge_check_run,
    parse_judge_spec,
)


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"not a share in [0, 1]: {text!r}", returncode=2) from None
    if not 0 <= value <= 1:
        raise CommandError(f"not a share in [0, 1]: {text!r}", returncode=2)
    return value


class Command(BaseCommand):
    help = (
        "Judge a sample of a dataset's reference pairs from different tiers in both orders and "
        "report parse rate, position consistency, A-preference, ties, agreement with the tiers, "
        "latency and tokens per judgment. The report is stored (dataset page). Exit 0 when the "
        "judge passes, 1 when it fails the thresholds, 2 on bad input."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dataset", help="Dataset name or id (default: the run's).")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--judge", help="The judge: a JudgeSpec as JSON, or @FILE holding one.")
        source.add_argument("--run", type=int, help="Check this run's judge and thresholds.")
        parser.add_argument("--pairs", type=int, default=DEFAULT_PAIRS, help="Pairs to judge.")
        parser.add_argument("--seed", type=int, default=0, help="Seed of the pair sample.")
        parser.add_argument("--min-parse-rate", help="Minimum parse rate (default 0.8).")
        parser.add_argument("--min-consistency", help="Minimum position consistency (0.6).")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        thresholds = JudgeCheckThresholds()
        run = None
        if options["run"] is not None:
            run = Run.objects.filter(pk=options["run"]).select_related("dataset").first()
            if run is None:
                raise CommandError(f"no run with id {options['run']}", returncode=2)
            try:
                config = TrainConfig.from_dict(run.config)
            except (TypeError, ValueError) as error:
                raise CommandError(f"run {run.pk}: its config: {error}", returncode=2) from None
            spec = config.judge
            thresholds = JudgeCheckThresholds(
                config.judge_check_min_parse_rate, config.judge_check_min_consistency
            )
        else:
            spec = self._spec(options["judge"])
        if options["dataset"]:
            dataset = find_dataset(options["dataset"])
        elif run is not None:
            dataset = run.dataset
        else:
            raise CommandError("give --dataset (the pairs come from its references)", returncode=2)
        if not 1 <= options["pairs"] <= MAX_PAIRS:
            raise CommandError(
                f"--pairs must be 1..{MAX_PAIRS}; got {options['pairs']}", returncode=2
            )
        thresholds = JudgeCheckThresholds(
            _share(options["min_parse_rate"])
            if options["min_parse_rate"] is not None
            else thresholds.min_parse_rate,
            _share(options["min_consistency"])
            if options["min_consistency"] is not None
            else thresholds.min_position_consistency,
        )
        try:
            check = judge_check_run(
                dataset=dataset,
                spec=spec,
                n=options["pairs"],
                seed=options["seed"],
                thresholds=thresholds,
            )
        except JudgeCheckError as error:
            raise CommandError(str(error), returncode=2) from None
        report = judge_check_report(check)
        if options["json"]:
            payload = {"id": check.pk, "passed": check.passed, "error": check.error}
            payload["report"] = check.report
            self.stdout.write(json.dumps(payload, indent=2))
        elif report is None:
            self.stdout.write(f"judge check #{check.pk}: could not run: {check.error}")
        else:
            self.stdout.write(f"judge check #{check.pk}: {report.summary()}")
            mean = report.latency_mean_s
            self.stdout.write(
                f"  {report.judgments} judgments, latency mean "
                f"{'n/a' if mean is None else f'{mean:.2f} s'}, tokens per judgment "
                f"{_number(report.prompt_tokens_per_judgment)} prompt + "
                f"{_number(report.completion_tokens_per_judgment)} completion"
            )
        if not check.passed:
            raise CommandError(f"judge check #{check.pk} failed", returncode=1)

    def _spec(self, text: str) -> Any:
        if text.startswith("@"):
            path = Path(text[1:])
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise CommandError(f"{path}: cannot read: {error}", returncode=2) from None
        try:
            payload = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(f"--judge is not JSON: {error}", returncode=2) from None
        try:
            return parse_judge_spec(payload)
        except JudgeCheckError as error:
            raise CommandError(str(error), returncode=2) from None


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"
