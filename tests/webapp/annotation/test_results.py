"""Results of a small campaign, checked against numbers computed by hand."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.webapp.annotation.factories import LABELS, cast, make_campaign
from webapp.annotation import results
from webapp.annotation.models import Campaign, Item, JudgeRun, JudgeVote, Vote
from webapp.annotation.services.judge_runs import judge_outcome, judge_run_create, judge_votes_store

X, Y, Z = LABELS

# Canonical outcomes of annotators 0 and 1 on the six items, keyed by (instruction, pair).
HAND_VOTES = {
    ("q0", X, Y): ("a", "a"),
    ("q0", X, Z): ("b", "b"),
    ("q0", Y, Z): ("tie", "b"),
    ("q1", X, Y): ("a", "both_bad"),
    ("q1", X, Z): ("b", "a"),
    ("q1", Y, Z): ("b", "b"),
}


def _items(campaign: Campaign) -> dict[tuple[str, str, str], Item]:
    return {
        (i.instruction.external_id, i.system_a.label, i.system_b.label): i
        for i in Item.objects.filter(campaign=campaign).select_related(
            "instruction", "system_a", "system_b"
        )
    }


@pytest.fixture
def voted(annotators: list[User]) -> Campaign:
    campaign = make_campaign(annotators, instructions=2, systems=3, overlap=2)
    items = _items(campaign)
    for key, (first, second) in HAND_VOTES.items():
        # Alternate the layout: counting must not depend on which side was shown.
        cast(annotators[0], items[key], first, a_on_left=True)
        cast(annotators[1], items[key], second, a_on_left=False)
    cast(annotators[2], items[("q0", X, Y)], "skip")  # a skip is not a vote
    return campaign


def test_it_counts_wins_ties_and_losses_per_pair(voted: Campaign) -> None:
    rows = {(r.first, r.second): r for r in results.pair_table(voted)}
    xy, xz, yz = rows[(X, Y)], rows[(X, Z)], rows[(Y, Z)]
    assert (xy.wins, xy.ties, xy.both_bad, xy.losses) == (3, 0, 1, 0)
    assert (xz.wins, xz.ties, xz.both_bad, xz.losses) == (1, 0, 0, 3)
    assert (yz.wins, yz.ties, yz.both_bad, yz.losses) == (0, 1, 0, 3)
    assert xy.adjusted_win_rate == pytest.approx((3 + 0.5) / 4)
    assert xz.adjusted_win_rate == pytest.approx(1 / 4)
    assert yz.adjusted_win_rate == pytest.approx(0.5 / 4)


def test_it_rates_the_systems_in_the_order_of_their_records(voted: Campaign) -> None:
    ratings = results.ratings(voted, bootstrap=50, seed=1)
    assert [r.system for r in ratings] == [Z, X, Y]
    assert sum(r.battles for r in ratings) == 2 * 12
    for rating in ratings:
        assert rating.low <= rating.rating <= rating.high


def test_it_puts_two_systems_400_log10_odds_apart(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=4, systems=2, overlap=1, name="two")
    items = sorted(_items(campaign).values(), key=lambda i: i.instruction.external_id)
    # 2 wins + 2 ties for A = 3 wins to 1 (a tie is half a win each way): 400*log10(3).
    for item, outcome in zip(items, ["a", "a", "tie", "both_bad"], strict=True):
        cast(annotators[0], item, outcome)
    by_label = {r.system: r.rating for r in results.ratings(campaign, bootstrap=0)}
    assert by_label[X] - by_label[Y] == pytest.approx(190.85, abs=1.0)


def test_it_measures_agreement_of_two_annotators_with_cohens_kappa(voted: Campaign) -> None:
    agreement = results.human_agreement(voted)
    assert agreement.method == "cohen"
    assert (agreement.items, agreement.annotators) == (6, 2)
    assert agreement.raw == pytest.approx(3 / 6)
    # p_o = 1/2; p_e = (2*2 + 3*3) / 36 = 13/36; kappa = (18 - 13) / (36 - 13) = 5/23.
    assert agreement.kappa == pytest.approx(5 / 23)


def test_it_measures_agreement_of_three_annotators_with_fleiss_kappa(
    annotators: list[User],
) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=2, overlap=3, name="three")
    first, second = sorted(_items(campaign).values(), key=lambda i: i.instruction.external_id)
    for annotator, outcome in zip(annotators, ["a", "a", "b"], strict=True):
        cast(annotator, first, outcome)
    for annotator in annotators:
        cast(annotator, second, "tie")
    agreement = results.human_agreement(campaign)
    assert agreement.method == "fleiss"
    # P_1 = 1/3, P_2 = 1: mean 2/3. Shares a 2/6, b 1/6, tie 3/6: P_e = 14/36.
    assert agreement.raw == pytest.approx(2 / 3)
    assert agreement.kappa == pytest.approx((2 / 3 - 14 / 36) / (1 - 14 / 36))


def test_it_compares_the_judge_with_the_humans_and_measures_position_flips(
    voted: Campaign,
) -> None:
    judge_run = JudgeRun.objects.create(campaign=voted, judge_name="fake-judge", spec={})
    items = _items(voted)
    verdicts = {  # (order ab, order ba) as the judge wrote them
        ("q0", X, Y): ("A", "B"),  # consistent: a; humans a
        ("q0", X, Z): ("A", "A"),  # flips with the order: tie; humans b
        ("q0", Y, Z): ("B", "A"),  # consistent: b; humans tie (1-1)
        ("q1", X, Y): ("TIE", "TIE"),  # tie; humans tie (a vs both bad)
        ("q1", X, Z): ("INVALID", "A"),  # left out, counted invalid
        ("q1", Y, Z): ("B", "A"),  # b; humans b
    }
    judge_votes_store(
        judge_run=judge_run,
        rows=[
            {"item": items[key], "order": order, "verdict": verdict,
             "outcome": judge_outcome(verdict, order)}
            for key, pair in verdicts.items()
            for order, verdict in zip(("ab", "ba"), pair, strict=True)
        ],
    )  # fmt: skip
    (row,) = results.judge_agreement(voted)
    assert (row.items, row.invalid) == (5, 1)
    assert row.agreement == pytest.approx(3 / 5)
    assert row.agreement_without_ties == pytest.approx(2 / 2)
    assert row.position_flip_rate == pytest.approx(1 / 5)
    assert row.first_shown_rate == pytest.approx(6 / 9)


def test_it_runs_the_heuristic_judge_on_both_orders_of_every_item(voted: Campaign) -> None:
    from webapp.annotation.tasks import judge_campaign

    judge_run = judge_run_create(campaign=voted, spec={"kind": "heuristic"}, enqueue=False)
    outcome = judge_campaign.run(judge_run.pk)
    assert outcome["judgments"] == 12
    judge_run.refresh_from_db()
    assert judge_run.status == JudgeRun.Status.SUCCEEDED
    assert JudgeVote.objects.filter(judge_run=judge_run, order="ab").count() == 6
    assert JudgeVote.objects.filter(judge_run=judge_run, order="ba").count() == 6
    (row,) = results.judge_agreement(voted)
    # The heuristic scores each text on its own, so the order never changes its verdict.
    assert row.position_flip_rate == 0.0
    assert row.items == 6


def test_it_refuses_a_bad_judge_spec(voted: Campaign) -> None:
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="needs a model"):
        judge_run_create(campaign=voted, spec={"endpoint": "local"}, enqueue=False)
    with pytest.raises(ValidationError, match="unknown endpoint 'elsewhere'"):
        judge_run_create(campaign=voted, spec={"endpoint": "elsewhere"}, enqueue=False)
    assert not JudgeRun.objects.exists()


def test_it_shows_the_results_page_to_researchers(
    client: Client, researcher: User, voted: Campaign, django_capture_on_commit_callbacks
) -> None:
    client.force_login(researcher)
    html = client.get(f"/annotate/campaigns/{voted.pk}/results/").content.decode()
    assert '<td class="wins">3</td>' in html
    assert 'id="kappa">0.217<' in html and 'id="raw-agreement">0.500<' in html
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(f"/annotate/campaigns/{voted.pk}/judge/", {"endpoint": "heuristic"})
    assert response.status_code == 302
    assert JudgeRun.objects.filter(campaign=voted, status="queued").count() == 1
    assert len(callbacks) == 1  # the task is queued once the judge run is committed


def test_the_results_page_loads_the_votes_once_whatever_the_judge_runs(
    client: Client, researcher: User, voted: Campaign
) -> None:
    client.force_login(researcher)
    url = f"/annotate/campaigns/{voted.pk}/results/"
    vote_table = Vote._meta.db_table

    def page_queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    def vote_loads(queries: list[str]) -> int:
        # Reading vote rows: a FROM on the vote table that is not a COUNT.
        return sum(
            1 for sql in queries if f'FROM "{vote_table}"' in sql and "COUNT(" not in sql.upper()
        )

    judge_run_create(campaign=voted, spec={"kind": "heuristic"}, enqueue=False)
    page_queries()  # the first request also loads the session and the user's permissions
    first = page_queries()
    assert vote_loads(first) == 1
    for _ in range(2):
        judge_run_create(campaign=voted, spec={"kind": "heuristic"}, enqueue=False)
    assert voted.judge_runs.count() == 3
    assert len(page_queries()) == len(first)  # no query per judge run


def test_it_exports_every_vote_as_jsonl(client: Client, researcher: User, voted: Campaign) -> None:
    client.force_login(researcher)
    response = client.get(f"/annotate/campaigns/{voted.pk}/votes.jsonl")
    assert response["Content-Type"] == "application/jsonl"
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert len(rows) == 13  # 12 votes and 1 skip
    skip = [r for r in rows if r["choice"] == "skip"]
    assert len(skip) == 1 and skip[0]["skip_reason"] == "unreadable"
    layouts = {(r["annotator"], r["left_system"] == r["system_a"]) for r in rows}
    assert ("ann0", True) in layouts and ("ann1", False) in layouts
    pressed_left = [r for r in rows if r["annotator"] == "ann1" and r["choice"] == "left"]
    assert pressed_left and all(r["outcome"] == "b" for r in pressed_left)


def test_it_exports_a_preference_dataset_without_ties(
    client: Client, researcher: User, voted: Campaign
) -> None:
    client.force_login(researcher)
    response = client.get(f"/annotate/campaigns/{voted.pk}/preferences.jsonl")
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    items = _items(voted)
    # Decisive majorities: q0 X-Y (a), q0 X-Z (b), q1 Y-Z (b); the rest are ties.
    expected = [
        (items[("q0", X, Y)].output_a.text, items[("q0", X, Y)].output_b.text),
        (items[("q0", X, Z)].output_b.text, items[("q0", X, Z)].output_a.text),
        (items[("q1", Y, Z)].output_b.text, items[("q1", Y, Z)].output_a.text),
    ]
    assert sorted((r["chosen"], r["rejected"]) for r in rows) == sorted(expected)
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    import datasets

    dataset = datasets.Dataset.from_list(rows)
    assert dataset.column_names == ["prompt", "chosen", "rejected"]
