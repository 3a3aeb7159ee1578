"""Launch a seeded ablation study from a JSON or TOML file: the grid the ablation form
launches (training runs on the workers, evaluated as they finish), or all of it in this
process with --inline."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from webapp.evals.ablation_results import StudyTable
from webapp.evals.services.ablation_execution import ablation_grid_execute, ablation_study_launch
from webapp.evals.services.ablation_study import StudyConfigError
from webapp.evals.services.ablations import AblationError
from webapp.evals.services.config import EvalConfigError


def write_table(table: StudyTable, stream: Any) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    for row in table.csv_rows():
        writer.writerow(row)


class Command(BaseCommand):
    help = (
        "Launch an ablation study from a config file (docs/research-validity.md): name, "
        "dataset, arms or axes and design, seeds, train (TrainConfig overrides), "
        "selections_used, eval (benchmark, split, limit, settings, judge)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--config", required=True, help="JSON or TOML (.toml) study file.")
        parser.add_argument("--name", help="Grid name (overrides the file's).")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Train and evaluate every cell here, one after another, and print the table.",
        )
        parser.add_argument("--csv", help="With --inline: also write the table to this file.")

    def handle(self, *args: Any, **options: Any) -> None:
        overrides = {"name": options["name"]} if options["name"] else {}
        inline = options["inline"]
        try:
            grid = ablation_study_launch(Path(options["config"]), enqueue=not inline, **overrides)
        except (StudyConfigError, AblationError, EvalConfigError) as error:
            raise CommandError(str(error), returncode=2) from None
        cells = grid.cells.count()
        self.stdout.write(
            f"Ablation grid #{grid.pk} {grid.name!r}: {cells} runs "
            f"({cells // max(len(grid.seeds), 1)} arms x {len(grid.seeds)} seeds), "
            f"group {grid.group}"
        )
        if not inline:
            self.stdout.write(f"Queued; follow it at /evals/ablations/{grid.pk}/")
            return
        table = ablation_grid_execute(grid.pk, say=self.stdout.write)
        write_table(table, self.stdout)
        if options["csv"]:
            with open(options["csv"], "w", newline="", encoding="utf-8") as handle:
                write_table(table, handle)
            self.stdout.write(f"Table written to {options['csv']}")
        short = [
            row.arm
            for row in table.rows
            if row.statuses.get("succeeded", 0) != len(row.seeds) or row.n != len(row.seeds)
        ]
        if short or table.base.get("status") != "succeeded":
            sys.stdout.flush()
            raise CommandError(
                "the study did less than asked: arms with a run or evaluation that did not "
                f"succeed: {short or 'none'}; base policy evaluation {table.base.get('status')}",
                returncode=1,
            )
