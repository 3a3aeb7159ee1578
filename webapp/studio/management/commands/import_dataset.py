"""Import a dataset file; on any problem, list them all, import nothing and exit with 2."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from webapp.studio.importers import FORMATS
from webapp.studio.models import Reference
from webapp.studio.services.datasets import DatasetImportError, dataset_import


class Command(BaseCommand):
    help = (
        "Import instructions (and references) from our JSONL, WritingBench, LongBench-Write or "
        "the Writing-RL verl parquet. A file with any problem imports nothing (exit status 2)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path")
        parser.add_argument("--name", required=True, help="Name of the new dataset (unique).")
        parser.add_argument("--format", default="auto", choices=FORMATS, dest="fmt")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--split", default="train", choices=("train", "eval", "test"),
            help="Where records without a split of their own land (default train).",
        )  # fmt: skip
        parser.add_argument(
            "--eval-fraction", type=float,
            help="Instead: send this share of the instructions (0-1) to eval, the rest to train.",
        )  # fmt: skip
        parser.add_argument("--seed", type=int, default=0, help="Seed of --eval-fraction.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            dataset = dataset_import(
                name=options["name"],
                path=options["path"],
                fmt=options["fmt"],
                description=options["description"],
                split=options["split"],
                eval_fraction=options.get("eval_fraction"),
                seed=options["seed"],
            )
        except DatasetImportError as error:
            for line in error.lines():
                self.stderr.write(line)
            raise CommandError(
                f"{error.total:,} problem(s) in {error.filename}; nothing was imported",
                returncode=2,
            ) from None
        references = Reference.objects.filter(instruction__dataset=dataset).count()
        splits = ", ".join(
            f"{row['split']} {row['n']}"
            for row in dataset.instructions.values("split")
            .annotate(n=Count("id"))
            .order_by("split")
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported dataset {dataset.name!r} (id {dataset.pk}, format "
                f"{dataset.source_format}): {dataset.instructions.count()} instructions, "
                f"{references} references; splits: {splits}"
            )
        )
