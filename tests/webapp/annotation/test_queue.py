"""The queue: overlap, leases, one vote per annotator, and races on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections, connection
from django.utils import timezone

from tests import services as test_services
from tests.webapp.annotation.factories import make_campaign
from webapp.annotation.models import Assignment, Item, Vote
from webapp.annotation.services.assignments import assignment_claim_next
from webapp.annotation.services.votes import LeaseLost, VoteResult, vote_and_claim_next, vote_record


def test_it_takes_an_item_out_of_the_queue_once_it_has_its_overlap(
    annotators: list[User],
) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=2)
    first = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    second = assignment_claim_next(campaign=campaign, annotator=annotators[1])
    assert first is not None and second is not None
    assert first.item_id == second.item_id
    # Both slots are leased: the third annotator gets nothing.
    assert assignment_claim_next(campaign=campaign, annotator=annotators[2]) is None
    vote_record(assignment=first, choice="left")
    vote_record(assignment=second, choice="tie")
    item = Item.objects.get(pk=first.item_id)
    assert (item.votes_done, item.complete) == (2, True)
    assert assignment_claim_next(campaign=campaign, annotator=annotators[2]) is None
    # Voters get nothing more either: the only item is done.
    assert assignment_claim_next(campaign=campaign, annotator=annotators[0]) is None


def test_it_hands_the_same_live_lease_back_on_reload(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=2, overlap=1)
    first = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    again = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert first is not None and again is not None
    assert again.pk == first.pk
    assert again.a_on_left == first.a_on_left


def test_it_never_hands_the_last_slot_to_two_annotators(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    taken = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert taken is not None
    assert assignment_claim_next(campaign=campaign, annotator=annotators[1]) is None


def test_it_reoffers_an_item_when_its_lease_expires(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1, lease_seconds=60)
    lapsed = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert lapsed is not None
    later = timezone.now() + timedelta(seconds=61)
    taken = assignment_claim_next(campaign=campaign, annotator=annotators[1], now=later)
    assert taken is not None and taken.item_id == lapsed.item_id
    assert taken.leased_until > later
    # The first annotator's late vote would exceed the overlap: refused, nothing written.
    with pytest.raises(LeaseLost):
        vote_record(assignment=lapsed, choice="left", now=later)
    assert not Vote.objects.exists()
    vote_record(assignment=taken, choice="right", now=later)
    assert Item.objects.get(pk=taken.item_id).complete


def test_it_accepts_a_late_vote_while_the_slot_is_still_free(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1, lease_seconds=60)
    lapsed = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert lapsed is not None
    result = vote_record(assignment=lapsed, choice="left", now=timezone.now() + timedelta(hours=1))
    assert result.created
    assert Item.objects.get(pk=lapsed.item_id).complete


def test_it_renews_an_expired_own_lease_when_the_slot_is_free(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1, lease_seconds=60)
    lapsed = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert lapsed is not None
    later = timezone.now() + timedelta(minutes=5)
    renewed = assignment_claim_next(campaign=campaign, annotator=annotators[0], now=later)
    assert renewed is not None and renewed.pk == lapsed.pk
    assert renewed.leased_until > later


def test_it_stores_one_vote_for_a_repeated_submit(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=2)
    assignment = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert assignment is not None
    first = vote_record(assignment=assignment, choice="left", rationale="clearer")
    second = vote_record(assignment=assignment, choice="right")
    assert first.created and not second.created
    assert second.vote.pk == first.vote.pk and second.vote.choice == "left"
    assert Vote.objects.count() == 1
    assert Item.objects.get(pk=assignment.item_id).votes_done == 1


def test_it_frees_the_slot_on_a_skip_and_requires_a_reason(annotators: list[User]) -> None:
    from django.core.exceptions import ValidationError

    campaign = make_campaign(annotators, instructions=1, systems=2, overlap=1)
    skipped = assignment_claim_next(campaign=campaign, annotator=annotators[0])
    assert skipped is not None
    with pytest.raises(ValidationError):
        vote_record(assignment=skipped, choice="skip", skip_reason="  ")
    vote_record(assignment=skipped, choice="skip", skip_reason="I can't read it")
    assert Assignment.objects.get(pk=skipped.pk).status == Assignment.Status.SKIPPED
    item = Item.objects.get(pk=skipped.item_id)
    assert (item.votes_done, item.complete) == (0, False)
    # The skipper does not get it again; someone else does.
    assert assignment_claim_next(campaign=campaign, annotator=annotators[0]) is None
    other = assignment_claim_next(campaign=campaign, annotator=annotators[1])
    assert other is not None and other.item_id == item.pk


CHOICES = ["left", "right", "tie", "both_bad", "left", "right"]


def _in_threads(count: int, target: Callable[[int], object]) -> list[object]:
    """Run ``target(i)`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def worker(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    close_old_connections()
    return results


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_stores_one_vote_when_two_submits_arrive_at_the_same_instant() -> None:
    test_services.require_postgres()
    users = [User.objects.create_user(f"race{i}") for i in range(2)]
    campaign = make_campaign(users, instructions=1, systems=2, overlap=2, name="race")
    assignment = assignment_claim_next(campaign=campaign, annotator=users[0])
    assert assignment is not None
    for attempt in range(5):  # several rounds: a race that passes once by luck is no proof
        Vote.objects.all().delete()
        Item.objects.update(votes_done=0, complete=False)
        Assignment.objects.filter(pk=assignment.pk).update(status="leased")
        results = _in_threads(
            6,
            lambda i: vote_record(
                assignment=Assignment.objects.select_related("item__campaign").get(
                    pk=assignment.pk
                ),
                choice=CHOICES[i],
            ),
        )
        assert all(isinstance(r, VoteResult) for r in results), results
        created = [r for r in results if r.created]  # type: ignore[union-attr]
        assert len(created) == 1, f"round {attempt}: {len(created)} votes created"
        assert {r.vote.pk for r in results} == {created[0].vote.pk}  # type: ignore[union-attr]
        assert Vote.objects.count() == 1
        assert Item.objects.get(pk=assignment.item_id).votes_done == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_gives_the_last_slot_to_exactly_one_of_many_claimers() -> None:
    test_services.require_postgres()
    users = [User.objects.create_user(f"claimer{i}") for i in range(8)]
    # 2 items x overlap 2 = 4 slots for 8 annotators asking at the same instant.
    campaign = make_campaign(users, instructions=2, systems=2, overlap=2, name="slots")
    results = _in_threads(8, lambda i: assignment_claim_next(campaign=campaign, annotator=users[i]))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    claimed = [r for r in results if r is not None]
    assert len(claimed) == 4
    per_item: dict[int, int] = {}
    for assignment in claimed:
        per_item[assignment.item_id] = per_item.get(assignment.item_id, 0) + 1  # type: ignore[union-attr]
    assert sorted(per_item.values()) == [2, 2]
    assert Assignment.objects.count() == 4


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_answers_simultaneous_double_submits_with_the_same_next_item() -> None:
    test_services.require_postgres()
    users = [User.objects.create_user(f"twin{i}") for i in range(2)]
    campaign = make_campaign(users, instructions=4, systems=2, overlap=2, name="twins")
    assignment = assignment_claim_next(campaign=campaign, annotator=users[0])
    assert assignment is not None

    def submit(index: int) -> tuple[str, int | None]:
        own = Assignment.objects.select_related("item__campaign").get(pk=assignment.pk)
        notice, following = vote_and_claim_next(
            assignment=own, annotator=users[0], choice=CHOICES[index]
        )
        return notice, following.pk if following else None

    results = _in_threads(4, submit)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(set(results)) == 1, results  # every twin got the same answer
    assert Vote.objects.count() == 1
    leases = Assignment.objects.filter(annotator=users[0], status="leased")
    assert leases.count() == 1  # and one lease on the next item, not four


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_it_leases_one_item_when_one_annotator_asks_twice_at_once() -> None:
    test_services.require_postgres()
    users = [User.objects.create_user(f"tabs{i}") for i in range(2)]
    campaign = make_campaign(users, instructions=4, systems=2, overlap=2, name="tabs")
    for _round in range(3):
        Assignment.objects.all().delete()
        results = _in_threads(
            4, lambda i: assignment_claim_next(campaign=campaign, annotator=users[0])
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        assert len({r.pk for r in results}) == 1  # type: ignore[union-attr]
        assert Assignment.objects.filter(annotator=users[0]).count() == 1


def test_a_campaign_with_nothing_to_do_shows_an_empty_bar() -> None:
    from webapp.annotation.selectors import Progress

    assert Progress(0, 0).percent == 0  # 0 / 0 is not "finished"
    assert (Progress(3, 6).percent, Progress(6, 6).percent, Progress(9, 6).percent) == (
        50,
        100,
        100,
    )
