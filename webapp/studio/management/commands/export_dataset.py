"""Export a dataset as the Writing-RL authors' verl parquet."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.studio.exporters import export_dataset
from webapp.studio.models import Dataset


class Command(BaseCommand):
    help = "Write a dataset (by name or id) to a verl parquet file (references weakest first)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("dataset", help="Dataset name or id.")
        parser.add_argument("path", help="The parquet file to write.")
        parser.add_argument("--split", choices=["train", "eval", "test"], default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = find_dataset(options["dataset"])
        summary = export_dataset(dataset=dataset, path=options["path"], split=options["split"])
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {summary.rows} rows to {summary.path}"
                + (
                    f" ({summary.skipped_without_references} instructions without references "
                    "left out)"
                    if summary.skipped_without_references
                    else ""
                )
            )
        )


def find_dataset(name_or_id: str) -> Dataset:
    dataset = Dataset.objects.filter(name=name_or_id).first()
    if dataset is None and name_or_id.isdigit():
        dataset = Dataset.objects.filter(pk=int(name_or_id)).first()
    if dataset is None:
        raise CommandError(f"no dataset named (or with id) {name_or_id!r}", returncode=2)
    return dataset
