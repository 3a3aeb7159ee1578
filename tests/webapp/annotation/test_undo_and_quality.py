"""Undo of the last vote, the guidelines on a first visit, the annotator QA panel and the
CSV and filtered preference exports."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from tests.webapp.annotation.factories import cast, make_campaign
from tests.webapp.annotation.test_results import voted  # noqa: F401 (a fixture)
from webapp.annotation.exports import VOTE_COLUMNS
from webapp.annotation.models import Assignment, Campaign, Item, Vote
from webapp.annotation.quality import annotator_quality
from webapp.annotation.services.votes import vote_undo_last


def _open_next(client: Client, campaign_id: int) -> Assignment:
    response = client.post(f"/annotate/campaigns/{campaign_id}/work/")
    match = re.fullmatch(r"/annotate/assignments/(\d+)/", response["Location"])
    assert match, response["Location"]
    return Assignment.objects.get(pk=int(match.group(1)))


def test_undo_takes_the_last_vote_back_and_reopens_its_item(annotators: list[User]) -> None:
    campaign = make_campaign(annotators[:1], instructions=1, systems=2, overlap=1)
    item = Item.objects.get(campaign=campaign)
    vote = cast(annotators[0], item, "a")
    item.refresh_from_db()
    assert (item.votes_done, item.complete) == (1, True)

    assignment = vote_undo_last(campaign=campaign, annotator=annotators[0])

    assert assignment.pk == vote.assignment_id
    assert assignment.status == Assignment.Status.LEASED
    assert assignment.leased_until > timezone.now()
    assert not Vote.objects.filter(pk=vote.pk).exists()
    item.refresh_from_db()
    assert (item.votes_done, item.complete) == (0, False)


def test_undo_keeps_an_item_complete_when_other_votes_still_fill_it(
    annotators: list[User],
) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=2)
    item = Item.objects.get(campaign=campaign)
    cast(annotators[0], item, "a")
    cast(annotators[1], item, "b")
    cast(annotators[2], item, "a")  # a third vote on a full item (its lease was live)
    item.refresh_from_db()
    assert (item.votes_done, item.complete) == (3, True)
    vote_undo_last(campaign=campaign, annotator=annotators[2])
    item.refresh_from_db()
    assert (item.votes_done, item.complete) == (2, True)


def test_undo_refuses_an_old_vote_and_changes_nothing(annotators: list[User]) -> None:
    campaign = make_campaign(annotators[:1], instructions=1, systems=2, overlap=1)
    item = Item.objects.get(campaign=campaign)
    vote = cast(annotators[0], item, "tie")
    later = timezone.now() + timedelta(minutes=11)
    with pytest.raises(ValidationError, match="more than 10 minutes old"):
        vote_undo_last(campaign=campaign, annotator=annotators[0], now=later)
    assert Vote.objects.filter(pk=vote.pk).exists()
    item.refresh_from_db()
    assert item.votes_done == 1


def test_undo_refuses_a_skip_whose_slot_another_annotator_took(annotators: list[User]) -> None:
    campaign = make_campaign(annotators[:2], instructions=1, systems=2, overlap=1)
    item = Item.objects.get(campaign=campaign)
    skip = cast(annotators[0], item, "skip")
    Assignment.objects.create(
        item=item,
        annotator=annotators[1],
        a_on_left=True,
        leased_until=timezone.now() + timedelta(minutes=5),
    )
    with pytest.raises(ValidationError, match="taken the item you skipped"):
        vote_undo_last(campaign=campaign, annotator=annotators[0])
    assert Vote.objects.filter(pk=skip.pk).exists()


def test_undo_without_a_vote_says_so(annotators: list[User]) -> None:
    campaign = make_campaign(annotators[:1], instructions=1, systems=2, overlap=1)
    with pytest.raises(ValidationError, match="no vote to undo"):
        vote_undo_last(campaign=campaign, annotator=annotators[0])


def test_the_page_offers_undo_after_a_vote_and_undo_shows_the_item_again(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators[:1], instructions=2, systems=2, overlap=1)
    client.force_login(annotators[0])
    first = _open_next(client, campaign.pk)
    page = client.get(f"/annotate/assignments/{first.pk}/").content.decode()
    assert 'id="undo-form"' not in page
    response = client.post(
        f"/annotate/assignments/{first.pk}/vote/", {"choice": "left"}, HTTP_HX_REQUEST="true"
    )
    fragment = response.content.decode()
    assert f'hx-post="/annotate/campaigns/{campaign.pk}/undo/"' in fragment
    assert client.get(f"/annotate/campaigns/{campaign.pk}/undo/").status_code == 405

    undone = client.post(f"/annotate/campaigns/{campaign.pk}/undo/", HTTP_HX_REQUEST="true")

    assert undone.status_code == 200
    assert f'data-assignment="{first.pk}"' in undone.content.decode()
    assert undone["HX-Push-Url"] == f"/annotate/assignments/{first.pk}/"
    assert not Vote.objects.filter(assignment=first).exists()
    # Voting again on the reopened item works and is counted once.
    client.post(f"/annotate/assignments/{first.pk}/vote/", {"choice": "right"})
    assert Vote.objects.get(assignment=first).choice == "right"
    assert Item.objects.get(pk=first.item_id).votes_done == 1


def test_an_undo_that_is_refused_answers_409_with_the_reason(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators[:1], instructions=1, systems=2, overlap=1)
    client.force_login(annotators[0])
    response = client.post(f"/annotate/campaigns/{campaign.pk}/undo/", HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "no vote to undo" in response.content.decode()


def test_the_guidelines_start_open_until_the_first_vote(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators[:1], instructions=2, systems=2, overlap=1)
    client.force_login(annotators[0])
    first = _open_next(client, campaign.pk)
    page = client.get(f"/annotate/assignments/{first.pk}/").content.decode()
    assert '<details id="guidelines" class="card guidelines" open>' in page
    client.post(f"/annotate/assignments/{first.pk}/vote/", {"choice": "tie"})
    following = _open_next(client, campaign.pk)
    page = client.get(f"/annotate/assignments/{following.pk}/").content.decode()
    assert '<details id="guidelines" class="card guidelines">' in page


def test_quality_counts_side_bias_agreement_and_disagreements(voted: Campaign) -> None:  # noqa: F811
    quality = annotator_quality(voted)
    rows = {row.annotator: row for row in quality.annotators}
    # ann0 saw A on the left: outcomes a, b, tie, a, b, b -> 2 lefts of 5 sided choices.
    assert (rows["ann0"].votes, rows["ann0"].skips, rows["ann0"].decisive) == (6, 0, 5)
    assert rows["ann0"].left_share == pytest.approx(2 / 5)
    # ann1 saw B on the left: outcomes a, b, b, both bad, a, b -> b is "left": 3 of 5.
    assert rows["ann1"].left_share == pytest.approx(3 / 5)
    # They agree on 3 of the 6 items both voted on.
    assert rows["ann0"].agreement == pytest.approx(0.5)
    assert rows["ann0"].compared_pairs == 6
    assert (rows["ann2"].votes, rows["ann2"].skips, rows["ann2"].agreement) == (0, 1, None)
    assert rows["ann0"].median_seconds is not None and rows["ann0"].median_seconds >= 0
    assert quality.disagreement_total == 3
    assert all(len({v.outcome for v in d.votes}) == 2 for d in quality.disagreements)


def test_the_results_page_shows_the_annotator_panel(
    client: Client,
    researcher: User,
    voted: Campaign,  # noqa: F811
) -> None:
    client.force_login(researcher)
    html = client.get(f"/annotate/campaigns/{voted.pk}/results/").content.decode()
    assert 'id="annotator-table"' in html
    assert "Disagreements (3 items)" in html
    assert 'id="export-votes-csv"' in html


def test_votes_export_as_csv_with_the_jsonl_columns(
    client: Client,
    researcher: User,
    voted: Campaign,  # noqa: F811
) -> None:
    client.force_login(researcher)
    response = client.get(f"/annotate/campaigns/{voted.pk}/votes.csv")
    assert response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == VOTE_COLUMNS
    assert len(rows) == Vote.objects.filter(item__campaign=voted).count() == 13
    jsonl = client.get(f"/annotate/campaigns/{voted.pk}/votes.jsonl")
    first = json.loads(b"".join(jsonl.streaming_content).splitlines()[0])
    assert rows[0]["prompt"] == first["prompt"] and rows[0]["response_a"] == first["response_a"]


@pytest.fixture
def split_votes(annotators: list[User]) -> Campaign:
    """Item 0: a, a, b (majority a, 2 of 3 agree); item 1: a single vote for a."""
    campaign = make_campaign(annotators, instructions=2, systems=2, overlap=3)
    first, second = Item.objects.filter(campaign=campaign).order_by("position")
    for annotator, outcome in zip(annotators, "aab", strict=True):
        cast(annotator, first, outcome)
    cast(annotators[0], second, "a")
    return campaign


def _preferences(client: Client, campaign: Campaign, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/annotate/campaigns/{campaign.pk}/preferences.jsonl{query}")
    assert response.status_code == 200
    return [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def test_the_preference_export_can_require_votes_and_agreement(
    client: Client, researcher: User, split_votes: Campaign
) -> None:
    client.force_login(researcher)
    first, second = Item.objects.filter(campaign=split_votes).order_by("position")
    assert len(_preferences(client, split_votes)) == 2  # no options: every decisive item
    two_votes = _preferences(client, split_votes, "?min_votes=2&min_agreement_percent=0")
    assert [row["chosen"] for row in two_votes] == [first.output_a.text]
    unanimous = _preferences(client, split_votes, "?min_votes=1&min_agreement_percent=100")
    assert [row["chosen"] for row in unanimous] == [second.output_a.text]
    assert _preferences(client, split_votes, "?min_votes=2&min_agreement_percent=67") == []
    assert len(_preferences(client, split_votes, "?min_votes=2&min_agreement_percent=66")) == 1


def test_the_preference_export_refuses_bad_options(
    client: Client, researcher: User, split_votes: Campaign
) -> None:
    client.force_login(researcher)
    response = client.get(
        f"/annotate/campaigns/{split_votes.pk}/preferences.jsonl?min_votes=0&min_agreement_percent=x"
    )
    assert response.status_code == 400
    assert "min_votes" in response.content.decode()
