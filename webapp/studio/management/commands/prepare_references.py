"""Queue the "prepare references" chain on a dataset: write → grade → order tiers, optionally
→ select, on its first N instructions (the dataset page's Prepare references action)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from rl_engine.judging import JudgeSpec
from rl_engine.writers import WriterSpec
from webapp.studio.management.commands.export_dataset import find_dataset
from webapp.studio.models import Instruction, Selection
from webapp.studio.paths import PathNotAllowed, check_model
from webapp.studio.services.prepare import PrepareError, references_prepare


def _json(text: str, what: str) -> dict[str, Any]:
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"{what}: not JSON: {error}", returncode=2) from None
    if not isinstance(value, dict):
        raise CommandError(f"{what}: a JSON object is needed", returncode=2)
    return value


class Command(BaseCommand):
    help = (
        "Queue the chained jobs that prepare a dataset's references: write (one writer), "
        "grade, order tiers and, with --select, answer with the policy and select. Each job "
        "waits for its inputs; --limit keeps every step to the first N instructions by id. "
        "Prints the job ids; exit 2 on bad input (nothing queued)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dataset", required=True, help="Dataset name or id.")
        parser.add_argument(
            "--writer", required=True, help="The writer: a WriterSpec as JSON, or @FILE."
        )
        parser.add_argument(
            "--grader", help="A JudgeSpec as JSON (or @FILE) naming an endpoint; default heuristic."
        )
        parser.add_argument("--split", default="", choices=["", *Instruction.Split.values])
        parser.add_argument("--limit", type=int, help="Only the first N instructions.")
        parser.add_argument("--select", default="", choices=["", *Selection.Strategy.values])
        parser.add_argument("--k", type=int, help="How many to select (default: all).")
        parser.add_argument("--policy", default="", help="The policy (margin, difficulty).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-new-tokens", type=int, default=256)

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = find_dataset(options["dataset"])
        try:
            writer = WriterSpec.from_dict(_json(options["writer"], "--writer"))
            grader = None
            if options["grader"]:
                spec = JudgeSpec.from_dict(_json(options["grader"], "--grader"))
                grader = None if spec.endpoint == "heuristic" else spec.to_dict()
            if writer.endpoint == "local" and writer.model:
                check_model(writer.model, "writer model")
            policy = options["policy"]
            if policy:
                policy = check_model(policy, "policy")
        except (TypeError, ValueError) as error:
            raise CommandError(str(error), returncode=2) from None
        except PathNotAllowed as error:
            raise CommandError(error.message, returncode=2) from None
        try:
            jobs = references_prepare(
                dataset=dataset, writer=writer, scorer=grader, split=options["split"],
                limit=options["limit"], strategy=options["select"], k=options["k"],
                policy=policy, seed=options["seed"], max_new_tokens=options["max_new_tokens"],
            )  # fmt: skip
        except PrepareError as error:
            raise CommandError(str(error), returncode=2) from None
        self.stdout.write(jobs[0].group_label)
        for job in jobs:
            inputs = ", ".join(f"#{i.pk}" for i in job.depends_on.order_by("pk"))
            after = f" after {inputs}" if inputs else ""
            self.stdout.write(f"  job #{job.pk} {job.kind} ({job.status}{after})")
