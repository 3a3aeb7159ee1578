"""The annotation page: blind, sides recorded, own assignments only, htmx and plain POST."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.test import Client

from tests.webapp.annotation.factories import LABELS, make_campaign
from webapp.annotation.models import Assignment, Item, Vote
from webapp.annotation.results import pair_table


def _open_next(client: Client, campaign_id: int) -> Assignment:
    response = client.post(f"/annotate/campaigns/{campaign_id}/work/")
    assert response.status_code == 302
    match = re.fullmatch(r"/annotate/assignments/(\d+)/", response["Location"])
    assert match, response["Location"]
    return Assignment.objects.get(pk=int(match.group(1)))


def test_it_sends_annotators_home_to_their_queue(client: Client, annotators: list[User]) -> None:
    campaign = make_campaign(annotators, name="poems")
    client.force_login(annotators[0])
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == "/annotate/"
    html = response.content.decode()
    # The public title, never the internal name (it may name the systems).
    assert f"Comparison {campaign.pk}" in html and "Start or continue" in html
    assert "poems" not in html


def test_it_never_shows_system_names_before_voting(client: Client, annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=3)
    client.force_login(annotators[0])
    for _ in range(3):
        assignment = _open_next(client, campaign.pk)
        html = client.get(f"/annotate/assignments/{assignment.pk}/").content.decode()
        item = assignment.item
        # The texts are there, the names of the systems are not, anywhere in the page.
        assert item.output_a.text.strip()[:30] in html
        assert item.output_b.text.strip()[:30] in html
        for label in LABELS:
            assert label not in html
        assert "tier" not in html.lower().replace("tier 0 answer", "").replace(
            "tier 1 answer", ""
        ).replace("tier 2 answer", "")
        response = client.post(
            f"/annotate/assignments/{assignment.pk}/vote/",
            {"choice": "tie"},
            HTTP_HX_REQUEST="true",
        )
        for label in LABELS:
            assert label not in response.content.decode()


def test_it_shows_the_sides_as_recorded_and_undoes_them_when_counting(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators[:1], instructions=10, systems=2, overlap=1)
    client.force_login(annotators[0])
    seen_layouts = set()
    for _ in range(10):
        assignment = _open_next(client, campaign.pk)
        html = client.get(f"/annotate/assignments/{assignment.pk}/").content.decode()
        item = assignment.item
        left, right = html.index('id="response-left"'), html.index('id="response-right"')
        a_at, b_at = html.index(item.output_a.text[:25]), html.index(item.output_b.text[:25])
        # The page puts system A's text on the side the assignment recorded.
        if assignment.a_on_left:
            assert left < a_at < right < b_at
        else:
            assert left < b_at < right < a_at
        seen_layouts.add(assignment.a_on_left)
        # Always press "left": the winner is whichever system was shown there.
        response = client.post(f"/annotate/assignments/{assignment.pk}/vote/", {"choice": "left"})
        assert response.status_code == 302
        vote = Vote.objects.get(assignment=assignment)
        shown_left = item.system_a if assignment.a_on_left else item.system_b
        assert vote.left_system == shown_left
        assert vote.winner == shown_left
        assert vote.outcome == ("a" if assignment.a_on_left else "b")
    # Ten coin flips: both layouts appear (the chance of one layout only is 2 in 1024).
    assert seen_layouts == {True, False}
    votes = list(Vote.objects.select_related("item"))
    a_wins = sum(1 for v in votes if v.left_system_id == v.item.system_a_id)
    (row,) = pair_table(campaign)
    assert (row.wins, row.losses, row.total) == (a_wins, 10 - a_wins, 10)


def test_it_answers_404_for_another_annotators_assignment(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=2)
    client.force_login(annotators[0])
    theirs = _open_next(client, campaign.pk)
    client.force_login(annotators[1])
    assert client.get(f"/annotate/assignments/{theirs.pk}/").status_code == 404
    response = client.post(f"/annotate/assignments/{theirs.pk}/vote/", {"choice": "left"})
    assert response.status_code == 404
    assert not Vote.objects.exists()
    # Not a member of the campaign: its work URL is a 404 too.
    outsider = User.objects.create_user("outsider")
    client.force_login(outsider)
    assert client.get(f"/annotate/campaigns/{campaign.pk}/work/").status_code == 404


def test_it_swaps_in_the_next_item_for_htmx(client: Client, annotators: list[User]) -> None:
    campaign = make_campaign(annotators[:1], instructions=2, systems=2, overlap=1)
    client.force_login(annotators[0])
    first = _open_next(client, campaign.pk)
    page = client.get(f"/annotate/assignments/{first.pk}/").content.decode()
    assert f'hx-post="/annotate/assignments/{first.pk}/vote/"' in page
    assert 'id="guidelines"' in page and "<strong>clearer</strong>" in page
    response = client.post(
        f"/annotate/assignments/{first.pk}/vote/",
        {"choice": "right", "rationale": "tighter"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    fragment = response.content.decode()
    assert "<html" not in fragment  # only the item area comes back
    following = Assignment.objects.exclude(pk=first.pk).get(annotator=annotators[0])
    assert f'data-assignment="{following.pk}"' in fragment
    assert response["HX-Push-Url"] == f"/annotate/assignments/{following.pk}/"
    assert 'data-testid="mine-progress">1 / 2' in fragment
    assert Vote.objects.get(assignment=first).rationale == "tighter"
    # The last vote: the area says all done.
    last = client.post(
        f"/annotate/assignments/{following.pk}/vote/", {"choice": "tie"}, HTTP_HX_REQUEST="true"
    )
    assert 'id="all-done"' in last.content.decode()
    assert last["HX-Push-Url"] == "/annotate/"


def test_it_answers_a_repeated_submit_like_the_first(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=2, overlap=1)
    client.force_login(annotators[0])
    assignment = _open_next(client, campaign.pk)
    url = f"/annotate/assignments/{assignment.pk}/vote/"
    first = client.post(url, {"choice": "left"})
    second = client.post(url, {"choice": "right"})
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Vote.objects.filter(assignment=assignment).get().choice == "left"
    assert Item.objects.get(pk=assignment.item_id).votes_done == 1


def test_it_rejects_a_vote_without_the_csrf_token(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2)
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotators[0])
    # Taking the lease is a POST too: without the token it is refused and leases nothing.
    assert client.post(f"/annotate/campaigns/{campaign.pk}/work/").status_code == 403
    assert not Assignment.objects.exists()
    start = client.get(f"/annotate/campaigns/{campaign.pk}/work/").content.decode()
    start_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', start)
    assert start_token
    claimed = client.post(
        f"/annotate/campaigns/{campaign.pk}/work/",
        {"csrfmiddlewaretoken": start_token.group(1)},
    )
    assert claimed.status_code == 302
    assignment = Assignment.objects.get()
    response = client.post(f"/annotate/assignments/{assignment.pk}/vote/", {"choice": "left"})
    assert response.status_code == 403
    assert not Vote.objects.exists()
    page = client.get(f"/annotate/assignments/{assignment.pk}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token
    ok = client.post(
        f"/annotate/assignments/{assignment.pk}/vote/",
        {"choice": "left", "csrfmiddlewaretoken": token.group(1)},
    )
    assert ok.status_code == 302
    assert Vote.objects.count() == 1


def test_it_keeps_the_rationale_when_a_skip_lacks_its_reason(
    client: Client, annotators: list[User]
) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2)
    client.force_login(annotators[0])
    assignment = _open_next(client, campaign.pk)
    response = client.post(
        f"/annotate/assignments/{assignment.pk}/vote/",
        {"choice": "skip", "rationale": "my careful thoughts"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Say why you skip this item." in html
    assert "my careful thoughts" in html  # nothing the annotator wrote is lost
    assert not Vote.objects.exists()


def test_it_counts_progress_the_same_in_one_query_as_in_three(annotators: list[User]) -> None:
    from tests.webapp.annotation.factories import cast
    from webapp.annotation import selectors

    campaign = make_campaign(annotators, instructions=3, systems=2, overlap=2)
    items = list(campaign.items.order_by("position"))
    cast(annotators[0], items[0], "a")
    cast(annotators[0], items[1], "skip")
    cast(annotators[1], items[0], "tie")
    mine, overall = selectors.progress_pair(campaign, annotators[0])
    assert mine == selectors.annotator_progress(campaign, annotators[0])
    assert overall == selectors.campaign_progress(campaign)
    # Mine counts skips (work done), the campaign only counted votes; share = ceil(3*2/3) = 2.
    assert (mine.done, mine.target, overall.done, overall.target) == (2, 2, 2, 6)


# Queries of one htmx vote (session, user, assignment; the vote's three writes; the lock, the
# live-lease check, the candidate, the lease, the next item's page; the progress; plus the
# transaction statements). SQLite has no row lock but claims optimistically (two more).
VOTE_QUERIES = {"postgresql": 18, "sqlite": 19}


def test_it_records_a_vote_and_leases_the_next_item_in_few_queries(
    client: Client, annotators: list[User], django_assert_max_num_queries
) -> None:
    from django.db import connection

    campaign = make_campaign(annotators, instructions=4, systems=3, overlap=2)
    for other in annotators[1:]:  # other annotators hold leases the claim must count
        client.force_login(other)
        _open_next(client, campaign.pk)
    client.force_login(annotators[0])
    assignment = _open_next(client, campaign.pk)
    # As in a browser, the session got its CSRF secret (CSRF_USE_SESSIONS) with the first page.
    client.get("/annotate/")
    for _ in range(3):
        with django_assert_max_num_queries(VOTE_QUERIES[connection.vendor]):
            response = client.post(
                f"/annotate/assignments/{assignment.pk}/vote/",
                {"choice": "left"},
                HTTP_HX_REQUEST="true",
            )
        assert response.status_code == 200
        following = Assignment.objects.get(annotator=annotators[0], status=Assignment.Status.LEASED)
        assert f'data-assignment="{following.pk}"' in response.content.decode()
        assignment = following
    assert Vote.objects.filter(annotator=annotators[0]).count() == 3
