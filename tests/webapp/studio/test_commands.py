"""import_dataset, export_dataset and launch_run from a terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.webapp.studio.test_importers import OURS, write_jsonl
from tests.webapp.studio.test_runs import tiny_config, tiny_policy  # noqa: F401 - fixture
from webapp.studio.models import Dataset, Run, StepMetric

pytestmark = pytest.mark.django_db


def test_it_imports_and_exports_from_the_command_line(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "import_dataset", str(write_jsonl(tmp_path / "d.jsonl", OURS)), name="cli", stdout=out
    )
    assert "3 instructions, 5 references" in out.getvalue()
    out = io.StringIO()
    call_command("export_dataset", "cli", str(tmp_path / "cli.parquet"), stdout=out)
    assert "Wrote 2 rows" in out.getvalue() and (tmp_path / "cli.parquet").exists()


def test_it_exits_with_2_and_lists_problems_on_bad_input(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "a", "prompt": 1}, {"id": "b"}])
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_dataset", str(path), name="bad", stderr=err)
    assert caught.value.returncode == 2
    assert err.getvalue().splitlines() == [
        "bad.jsonl, line 1, field prompt: must be a string, got a number",
        "bad.jsonl, line 2, field prompt: is missing",
    ]
    assert not Dataset.objects.exists()


def test_it_queues_a_run_or_refuses_a_bad_config(
    tmp_path: Path, django_capture_on_commit_callbacks
) -> None:
    call_command(
        "import_dataset",
        str(write_jsonl(tmp_path / "d.jsonl", OURS)),
        name="cli",
        stdout=io.StringIO(),
    )
    good = tmp_path / "run.json"
    good.write_text(json.dumps({"name": "from file", "dataset": "cli", "config": {"max_steps": 3}}))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        call_command("launch_run", config=str(good), stdout=io.StringIO())
    assert len(callbacks) == 1
    assert Run.objects.get().name == "from file"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"temperature": 0}))
    with pytest.raises(CommandError, match="temperature") as caught:
        call_command("launch_run", config=str(bad), dataset="cli")
    assert caught.value.returncode == 2


def test_it_trains_in_process_with_a_progress_bar(tmp_path: Path, settings, tiny_policy) -> None:  # noqa: F811
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    call_command(
        "import_dataset",
        str(write_jsonl(tmp_path / "d.jsonl", OURS)),
        name="cli",
        stdout=io.StringIO(),
    )
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config(tiny_policy, max_steps=1)))
    out = io.StringIO()
    call_command("launch_run", config=str(config), dataset="cli", sync=True, stdout=out)
    assert "step 1/1" in out.getvalue() and "succeeded after 1 steps" in out.getvalue()
    run = Run.objects.get()
    assert run.status == "succeeded" and StepMetric.objects.filter(run=run).count() == 1
