"""The comparison view across runs and checkpoints, its plots and the CSV exports."""

from __future__ import annotations

import csv
import io
import re
from xml.etree import ElementTree

import pytest
from django.test import Client

from tests.webapp.evals.factories import (
    add_results,
    make_checkpoint,
    make_dataset,
    make_run,
    make_succeeded_eval,
)
from webapp.evals.models import EvalRun

pytestmark = pytest.mark.django_db


def read_csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def two_checkpoints() -> list[EvalRun]:
    run = make_run(make_dataset(), current_step=20)
    runs = []
    for step, wb, sl, sq, win in ((10, 70.0, 40.0, 60.0, 0.5), (20, 80.0, 60.0, 70.0, 0.75)):
        checkpoint = make_checkpoint(run, step)
        common = {"system_kind": "checkpoint", "checkpoint": checkpoint, "base_model": "",
                  "training_run": run}  # fmt: skip
        runs.append(make_succeeded_eval("writingbench", {"score": wb}, **common))
        lbw = make_succeeded_eval(
            "longbench_write",
            {"score": (sl + sq) / 2, "S_l": sl, "S_q": sq, "S_bar": (sl + sq) / 2,
             "domain_scores": {"Email": sl, "Story": sq}},
            **common,
        )  # fmt: skip
        add_results(lbw, [(100, step * 5, 50.0, "Email"), (2000, step * 50, 60.0, "Story")])
        runs.append(lbw)
        runs.append(
            make_succeeded_eval(
                "pairwise",
                {"score": win * 100, "adjusted_win_rate": win, "length_controlled_win_rate": 0.6},
                **common,
            )
        )
    runs.append(make_succeeded_eval("writingbench", {"score": 65.0}, base_model="smollm2"))
    return runs


def test_it_compares_systems_in_the_papers_table(
    staff_client: Client, two_checkpoints: list[EvalRun]
) -> None:
    ids = ",".join(str(r.pk) for r in two_checkpoints)
    response = staff_client.get(f"/evals/compare/?runs={ids}")
    html = response.content.decode()
    for header in ("WritingBench", "LongBench-Write S_l", "S_q", "S̄", "Win rate %",
                   "LC win rate %"):  # fmt: skip
        assert f'<th class="num">{header}</th>' in html
    assert "run " in html and "step 10" in html and "step 20" in html and "smollm2" in html
    assert ">80.0</a>" in html and ">65.0</a>" in html and ">75.0</a>" in html
    # Three plots: score per checkpoint, required vs produced length (log), per-domain bars.
    assert html.count("<svg") == 3
    assert "training step" in html and "required words (log)" in html
    assert "(20, 80)" in html  # a checkpoint point: step 20, WritingBench 80
    assert "Story" in html
    for svg in re.findall(r"<svg.*?</svg>", html, re.S):
        ElementTree.fromstring(svg)  # well-formed XML, so browsers draw it


def test_it_exports_the_comparison_as_csv(
    staff_client: Client, two_checkpoints: list[EvalRun]
) -> None:
    ids = ",".join(str(r.pk) for r in two_checkpoints)
    response = staff_client.get(f"/evals/compare.csv?runs={ids}")
    assert response["Content-Type"].startswith("text/csv")
    rows = read_csv(response)
    assert rows[0][:7] == ["system", "WritingBench", "LongBench-Write S_l", "S_q", "S̄",
                           "Win rate %", "LC win rate %"]  # fmt: skip
    # Then, per column, the interval, N, dataset and split of each cell.
    assert rows[0][7:12] == ["WritingBench low", "WritingBench high", "WritingBench N",
                             "WritingBench dataset", "WritingBench split"]  # fmt: skip
    by_system = {row[0]: row[1:] for row in rows[1:]}
    step20 = next(v for k, v in by_system.items() if k.endswith("step 20"))
    assert step20[:6] == ["80.0000", "60.0000", "70.0000", "65.0000", "75.0000", "60.0000"]
    assert by_system["smollm2"][:6] == ["65.0000", "", "", "", "", ""]


def test_it_exports_item_results_as_csv(staff_client: Client) -> None:
    eval_run = make_succeeded_eval("longbench_write", {"score": 1.0})
    add_results(eval_run, [(100, 90, 88.5, "Email, formal"), (None, 3, None, "")])
    rows = read_csv(staff_client.get(f"/evals/{eval_run.pk}/results.csv"))
    assert rows[0][:5] == ["eval_run", "benchmark", "system", "item_id", "iteration"]
    assert rows[1][5:9] == ["Email, formal", "100", "90", "88.5000"]
    assert rows[2][6:9] == ["", "3", ""]
    assert rows[1][-1] == "response 0"


def test_the_default_comparison_takes_the_latest_succeeded_evaluations(
    staff_client: Client, two_checkpoints: list[EvalRun]
) -> None:
    EvalRun.objects.create(name="running", benchmark="writingbench", system_kind="base_model",
                           status="judging")  # fmt: skip
    html = staff_client.get("/evals/compare/").content.decode()
    assert "running" not in html
    assert ">65.0</a>" in html


def test_it_shows_n_and_intervals_and_flags_different_items(staff_client: Client) -> None:
    dataset = make_dataset("held-out")
    wide = make_succeeded_eval(
        "longbench_v2", {"score": 75.0, "items": 4}, base_model="wide", dataset=dataset,
        split="eval",
    )  # fmt: skip
    add_results(wide, [(None, 5, s, "") for s in (100.0, 0.0, 100.0, 100.0)])  # items 0-3
    narrow = make_succeeded_eval(
        "longbench_v2", {"score": 200 / 3, "items": 3}, base_model="narrow", dataset=dataset,
        split="eval",
    )  # fmt: skip
    add_results(narrow, [(None, 5, s, "") for s in (100.0, 100.0, 0.0)])  # items 0-2
    ids = f"{wide.pk},{narrow.pk}"
    html = staff_client.get(f"/evals/compare/?runs={ids}").content.decode()
    assert 'data-testid="different-items"' in html
    assert "N=4 · held-out · eval" in html and "N=3 · held-out · eval" in html
    assert '>75.0</a> <span class="muted interval">[' in html
    rows = read_csv(staff_client.get(f"/evals/compare.csv?runs={ids}"))
    head = rows[0]
    by_system = {row[0]: dict(zip(head, row, strict=True)) for row in rows[1:]}
    assert by_system["wide"]["LongBench v2 acc % N"] == "4"
    assert by_system["wide"]["LongBench v2 acc % dataset"] == "held-out"
    assert by_system["wide"]["LongBench v2 acc % split"] == "eval"
    low = float(by_system["wide"]["LongBench v2 acc % low"])
    high = float(by_system["wide"]["LongBench v2 acc % high"])
    assert 0.0 <= low < 75.0 < high <= 100.0
    assert by_system["wide"]["same items only"] == "no"
    # Same items only: the wide system is rescored on items 0-2, (100 + 0 + 100) / 3.
    html = staff_client.get(f"/evals/compare/?runs={ids}&same_items=1").content.decode()
    assert "Showing only the items every system has" in html
    assert "N=3 · held-out · eval" in html and "N=4" not in html
    rows = read_csv(staff_client.get(f"/evals/compare.csv?runs={ids}&same_items=1"))
    by_system = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert float(by_system["wide"]["LongBench v2 acc %"]) == pytest.approx(200 / 3)
    assert by_system["wide"]["LongBench v2 acc % N"] == "3"
    assert by_system["wide"]["same items only"] == "yes"
