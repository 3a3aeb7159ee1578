"""The seeded ablation study end to end on the tiny model: a 2-arm x 2-seed grid from a
config file, trained, evaluated on the held-out split beside the base policy, compared with
it in both orders, and tabulated with intervals over seeds."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.webapp.evals.factories import make_dataset, make_instruction
from webapp.evals.ablation_results import ablation_results
from webapp.evals.models import AblationGrid
from webapp.studio.models import Dataset, Selection
from webapp.studio.services.selection import selection_create

# Evaluations write progress from a worker thread: the test's data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

ARMS = [["full", "pairwise", "dynamic"], ["random", "pairwise", "static"]]


@pytest.fixture
def study_dataset() -> Dataset:
    dataset = make_dataset("study")
    for n in range(4):
        make_instruction(
            dataset, split="train", prompt=f"Write {20 + n} words about rain.",
            references=["Rain.", "Rain falls on the town.", "Rain falls softly on the old town."],
        )  # fmt: skip
    for n in range(3):
        make_instruction(dataset, prompt=f"Write {30 + 10 * n} words about snow.",
                         required_words=30 + 10 * n)  # fmt: skip
    return dataset


def write_config(path: Path, policy: Path, **extra: object) -> Path:
    config = {
        "name": "tiny study",
        "dataset": "study",
        "arms": ARMS,
        "seeds": [1, 2],
        "train": {
            "policy": str(policy), "num_generations": 2, "prompts_per_step": 2,
            "max_completion_tokens": 5, "kl_beta": 0.0, "learning_rate": 1e-3, "max_steps": 2,
            "checkpoint_every": 2, "device": "cpu",
        },
        "eval": {"benchmark": "longbench_write", "split": "eval",
                 "settings": {"max_new_tokens": 8}, "judge": {"kind": "heuristic"}},
        **extra,
    }  # fmt: skip
    path.write_text(json.dumps(config))
    return path


def test_a_two_arm_two_seed_study_runs_end_to_end(
    settings, tmp_path: Path, tiny_policy: Path, study_dataset: Dataset, client: Client,
    researcher,
) -> None:  # fmt: skip
    settings.WRITING_RL_RUNS_DIR = tmp_path / "runs"
    random = selection_create(dataset=study_dataset, strategy="random", k=3, policy="p", seed=0)
    config = write_config(tmp_path / "study.json", tiny_policy)
    out = io.StringIO()
    call_command("run_ablation", config=str(config), inline=True,
                 csv=str(tmp_path / "table.csv"), stdout=out)  # fmt: skip

    grid = AblationGrid.objects.get()
    assert grid.seeds == [1, 2] and grid.cells.count() == 4
    random_cells = grid.cells.filter(selection="random")
    assert {c.run.selection_id for c in random_cells} == {random.pk}
    assert sorted(c.run.config["seed"] for c in random_cells) == [1, 2]
    assert {c.run.config["curriculum"] for c in random_cells} == {"static"}
    base = grid.base_eval_run
    assert base.status == "succeeded" and base.base_model == str(tiny_policy)
    assert base.results.count() == 3  # the held-out split only

    table = ablation_results(grid)
    assert [row.arm for row in table.rows] == [" · ".join(arm) for arm in ARMS]
    for row in table.rows:
        assert row.seeds == [1, 2] and row.n == 2
        assert row.metric.mean is not None and row.metric.low is not None
        assert row.metric.low <= row.metric.mean <= row.metric.high
        assert row.win_rate.n == 2 and row.win_rate.low is not None
        assert 0.0 <= row.win_rate.low <= row.win_rate.mean <= row.win_rate.high <= 1.0
        assert row.system_first is not None and row.system_second is not None
        assert row.heuristic.n == 2 and row.steps == 2.0 and row.wall_s is not None
        assert row.signal_share is not None and 0.0 <= row.signal_share <= 1.0
    for cell in grid.cells.all():
        assert cell.comparison["items"] == 3
        total = cell.comparison["wins"] + cell.comparison["ties"] + cell.comparison["losses"]
        assert total + cell.comparison["invalid"] == 3
    assert table.base["n"] == 1 and table.base["metric"] is not None

    rows = list(csv.reader(io.StringIO((tmp_path / "table.csv").read_text())))
    assert rows[0][:9] == [
        "arm",
        "selection",
        "reward",
        "curriculum",
        "seeds",
        "n",
        "held-out S_l mean",
        "held-out S_l 95% low",
        "held-out S_l 95% high",
    ]
    assert rows[1][0] == "base policy"
    assert [r[0] for r in rows[2:]] == [row.arm for row in table.rows]
    assert all(r[4] == "1 2" and r[5] == "2" and r[7] and r[12] for r in rows[2:])
    assert "full · pairwise · dynamic" in out.getvalue()

    # The app's view shows the same table and exports the same CSV.
    client.force_login(researcher)
    html = client.get(f"/evals/ablations/{grid.pk}/").content.decode()
    assert "95% t-interval over seeds" in html and "random · pairwise · static" in html
    assert "Learning signal: share of prompt groups" in html and "<polyline" in html
    body = b"".join(client.get(f"/evals/ablations/{grid.pk}/arms.csv").streaming_content)
    assert list(csv.reader(io.StringIO(body.decode()))) == rows


def test_a_bad_config_names_the_field_and_creates_nothing(
    tmp_path: Path, tiny_policy: Path, study_dataset: Dataset
) -> None:
    config = write_config(tmp_path / "bad.json", tiny_policy, arms=[["full", "pairwise"]])
    with pytest.raises(CommandError, match=r"arm 1: give \[selection, reward, curriculum\]"):
        call_command("run_ablation", config=str(config), inline=True)
    config = write_config(tmp_path / "bad.json", tiny_policy, seeds=[1, "two"])
    with pytest.raises(CommandError, match="field 'seeds' must be a list of integers"):
        call_command("run_ablation", config=str(config))
    config = write_config(tmp_path / "bad.json", tiny_policy, arms=[["margin", "pairwise",
                                                                    "dynamic"]])  # fmt: skip
    with pytest.raises(CommandError, match="need a margin selection"):
        call_command("run_ablation", config=str(config))
    assert AblationGrid.objects.count() == 0 and not Selection.objects.exists()
