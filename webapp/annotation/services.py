"""Writes of the annotation app: campaigns, outputs, items, leases, votes and judge runs.

Concurrency rules, in one place:

* An item's slots are its counted votes plus the live leases on it. Every claim and every vote
  takes the item's row lock first (``SELECT ... FOR UPDATE``; on PostgreSQL the claim skips
  items another annotator is claiming right now with ``SKIP LOCKED``) and recounts inside the
  lock, so two annotators never take the same last slot. On SQLite, where there is no row
  lock, the claim is an optimistic conditional update of ``Item.claim_version`` (SQLite also
  runs one writer at a time, so the recount inside the transaction holds).
* One vote per (item, annotator) is a database unique constraint. A second submit, even at
  the same instant, hits the constraint; the ``IntegrityError`` is caught in a savepoint and
  the existing vote is returned as the result, so the duplicate still reads as a success.
* One annotator's claims are serialized by a lock on their user row, so two tabs (or a double
  submit) asking for the next item at once get the same lease, not two.
* The vote request records the vote and leases the next item in one transaction
  (:func:`vote_and_claim_next`): one commit per vote.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Q,
)
from django.utils import timezone

from webapp.annotation.models import (
    Assignment,
    Campaign,
    Item,
    JudgeRun,
    JudgeVote,
    System,
    SystemOutput,
    Vote,
)
from webapp.studio.models import Checkpoint, Instruction, Reference, Run

logger = logging.getLogger(__name__)

# Claims retried when a candidate fills up between the look and the lock.
_CLAIM_ATTEMPTS = 25


class LeaseLost(Exception):
    """The annotator's lease expired and the item's last slot went to someone else."""


@dataclass
class SystemSpec:
    """What a researcher picked as one contestant of a campaign.

    ``outputs`` (imported systems only) maps an instruction's primary key to the text.
    """

    kind: str
    label: str = ""
    checkpoint: Checkpoint | None = None
    run: Run | None = None
    reference_tier: int | None = None
    policy: str = ""
    outputs: Mapping[int, str] = field(default_factory=dict)


def system_default_label(spec: SystemSpec) -> str:
    """A readable, unique-enough name for a system (researchers can override it)."""
    if spec.kind == System.Kind.CHECKPOINT and spec.checkpoint is not None:
        return f"{spec.checkpoint.run.name} @ step {spec.checkpoint.step}"
    if spec.kind == System.Kind.RUN and spec.run is not None:
        return f"{spec.run.name} (latest checkpoint)"
    if spec.kind == System.Kind.REFERENCE:
        return f"reference tier {spec.reference_tier}"
    if spec.kind == System.Kind.BASE_POLICY:
        return f"base policy {spec.policy}"
    return "imported outputs"


def _system_policy(spec: SystemSpec) -> str:
    """The model a generated system runs: a checkpoint path or the base policy's name."""
    if spec.kind == System.Kind.CHECKPOINT:
        if spec.checkpoint is None:
            raise ValidationError({"systems": "a checkpoint system needs a checkpoint"})
        return spec.checkpoint.path
    if spec.kind == System.Kind.RUN:
        if spec.run is None:
            raise ValidationError({"systems": "a run system needs a run"})
        latest = spec.run.checkpoints.order_by("-step").first()
        if latest is None:
            raise ValidationError(
                {"systems": f"run {spec.run.name!r} has no checkpoint yet; pick another system"}
            )
        return latest.path
    if spec.kind == System.Kind.BASE_POLICY:
        if not spec.policy:
            raise ValidationError({"systems": "a base-policy system needs the policy's name"})
        return spec.policy
    return ""


def _check_specs(specs: Sequence[SystemSpec], instructions: Sequence[Instruction]) -> None:
    if len(specs) < 2:
        raise ValidationError({"systems": "a campaign compares at least two systems"})
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValidationError({"systems": f"two systems share the label {duplicates[0]!r}"})
    wanted = {instruction.pk for instruction in instructions}
    for spec in specs:
        if spec.kind not in System.Kind.values:
            raise ValidationError({"systems": f"unknown system kind {spec.kind!r}"})
        if spec.kind == System.Kind.REFERENCE:
            if spec.reference_tier is None:
                raise ValidationError({"systems": f"{spec.label}: pick a reference tier"})
            have = set(
                Reference.objects.filter(
                    instruction_id__in=wanted, tier=spec.reference_tier
                ).values_list("instruction_id", flat=True)
            )
            missing = sorted(wanted - have)
            if missing:
                names = ", ".join(_instruction_names(missing[:5]))
                raise ValidationError(
                    {
                        "systems": f"{spec.label}: {len(missing)} instruction(s) have no "
                        f"reference of tier {spec.reference_tier} (e.g. {names}); pick "
                        "instructions that have it or another tier"
                    }
                )
        if spec.kind == System.Kind.IMPORTED:
            missing = sorted(wanted - set(spec.outputs))
            if missing:
                names = ", ".join(_instruction_names(missing[:5]))
                raise ValidationError(
                    {
                        "systems": f"{spec.label}: the imported outputs miss {len(missing)} "
                        f"instruction(s) (e.g. {names})"
                    }
                )


def _instruction_names(pks: Iterable[int]) -> list[str]:
    return [
        str(external_id)
        for external_id in Instruction.objects.filter(pk__in=list(pks)).values_list(
            "external_id", flat=True
        )
    ]


@transaction.atomic
def campaign_create(
    *,
    name: str,
    instructions: Sequence[Instruction],
    systems: Sequence[SystemSpec],
    annotators: Iterable[AbstractBaseUser],
    overlap: int = 2,
    guidelines: str = "",
    lease_seconds: int = 30 * 60,
    max_new_tokens: int = 256,
    created_by: AbstractBaseUser | None = None,
    enqueue: bool = True,
) -> Campaign:
    """Create a campaign with its systems and, when every output exists, its items.

    Outputs that references or imports provide are stored at once. When a checkpoint, run or
    base-policy system still lacks outputs, the campaign stays ``generating`` and (with
    ``enqueue``) a generation task is queued on the GPU queue after the commit; that task
    builds the items. Invalid input raises ``ValidationError`` and creates nothing.
    """
    if not instructions:
        raise ValidationError({"instructions": "pick at least one instruction"})
    if overlap < 1:
        raise ValidationError({"overlap": "each item needs at least one annotation"})
    specs = [
        SystemSpec(**{**spec.__dict__, "label": spec.label or system_default_label(spec)})
        for spec in systems
    ]
    _check_specs(specs, instructions)
    if Campaign.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a campaign named {name!r} already exists"})
    campaign = Campaign.objects.create(
        name=name,
        guidelines=guidelines,
        overlap=overlap,
        lease_seconds=lease_seconds,
        max_new_tokens=max_new_tokens,
        created_by=created_by,
    )
    campaign.instructions.set(instructions)
    campaign.annotators.set(list(annotators))
    wanted = [instruction.pk for instruction in instructions]
    for spec in specs:
        system = System.objects.create(
            campaign=campaign,
            kind=spec.kind,
            label=spec.label,
            checkpoint=spec.checkpoint,
            run=spec.run,
            reference_tier=spec.reference_tier,
            policy=_system_policy(spec),
        )
        if spec.kind == System.Kind.REFERENCE:
            references = Reference.objects.filter(
                instruction_id__in=wanted, tier=spec.reference_tier
            )
            system_outputs_store(
                system=system, texts={ref.instruction_id: ref.text for ref in references}
            )
        elif spec.kind == System.Kind.IMPORTED:
            system_outputs_store(
                system=system, texts={pk: text for pk, text in spec.outputs.items() if pk in wanted}
            )
    if campaign_missing_outputs(campaign):
        if enqueue:
            from workers.tasks.annotation import enqueue_generation

            transaction.on_commit(lambda: enqueue_generation(campaign.pk))
    else:
        campaign_build_items(campaign=campaign)
    return campaign


def system_outputs_store(*, system: System, texts: Mapping[int, str]) -> int:
    """Store one output per instruction for ``system``; existing outputs are kept as they are."""
    created = SystemOutput.objects.bulk_create(
        [SystemOutput(system=system, instruction_id=pk, text=text) for pk, text in texts.items()],
        ignore_conflicts=True,
    )
    return len(created)


def campaign_missing_outputs(campaign: Campaign) -> dict[System, list[Instruction]]:
    """Per system, the campaign's instructions it has no output for yet."""
    instructions = list(campaign.instructions.order_by("pk"))
    missing: dict[System, list[Instruction]] = {}
    for system in campaign.systems.all():
        have = set(system.outputs.values_list("instruction_id", flat=True))
        lacking = [instruction for instruction in instructions if instruction.pk not in have]
        if lacking:
            missing[system] = lacking
    return missing


@transaction.atomic
def campaign_build_items(*, campaign: Campaign) -> int:
    """Build one item per instruction and pair of systems, in a shuffled (seeded) order, and
    open the campaign. Idempotent: a campaign that has items is only (re)opened."""
    if campaign_missing_outputs(campaign):
        raise ValidationError("some systems still lack outputs; generate them first")
    if not campaign.items.exists():
        systems = list(campaign.systems.order_by("pk"))
        outputs = {
            (output.system_id, output.instruction_id): output
            for output in SystemOutput.objects.filter(system__campaign=campaign)
        }
        pairs = [
            (instruction, first, second)
            for instruction in campaign.instructions.order_by("pk")
            for first, second in combinations(systems, 2)
        ]
        # Interleave instructions and pairs so an annotator does not see one pair in a row.
        random.Random(campaign.pk).shuffle(pairs)
        Item.objects.bulk_create(
            [
                Item(
                    campaign=campaign,
                    instruction=instruction,
                    position=position,
                    system_a=first,
                    system_b=second,
                    output_a=outputs[(first.pk, instruction.pk)],
                    output_b=outputs[(second.pk, instruction.pk)],
                )
                for position, (instruction, first, second) in enumerate(pairs)
            ]
        )
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.OPEN, error="")
    campaign.status = Campaign.Status.OPEN
    return campaign.items.count()


def campaign_fail(*, campaign_id: int, error: str) -> None:
    Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.FAILED, error=error)


# -- Leases ---------------------------------------------------------------------------------------


def _slots_taken(item: Item, annotator: Any, now: datetime) -> int:
    """Counted votes plus other annotators' live leases; call it holding the item's lock."""
    leases = (
        Assignment.objects.filter(item=item, status=Assignment.Status.LEASED, leased_until__gt=now)
        .exclude(annotator=annotator)
        .count()
    )
    return item.votes_done + leases


# The claim runs on every vote, so its statements are plain SQL written once: building the
# same statements with the ORM cost more CPU than everything else in the vote request.
_ASSIGNMENTS = Assignment._meta.db_table
_ITEMS = Item._meta.db_table

# The annotator's live lease in a campaign, oldest first.
_ACTIVE_LEASE_SQL = (
    f"SELECT a.id FROM {_ASSIGNMENTS} a JOIN {_ITEMS} i ON i.id = a.item_id"
    " WHERE i.campaign_id = %s AND a.annotator_id = %s AND a.status = %s"
    " AND a.leased_until > %s ORDER BY a.created_at, a.id LIMIT 1"
)

# The first open item (queue order) this annotator has not voted on or skipped, with a free
# slot as of now, and the annotator's own (lapsed) lease on it, if any. Ordering by the index
# (not by a computed count) lets PostgreSQL stop at the first free item; everyone fills the
# earliest open items first, so items reach their overlap and leave the queue early.
_CANDIDATE_SQL = (
    "SELECT i.id, i.votes_done, i.complete, i.claim_version,"
    f" (SELECT o.id FROM {_ASSIGNMENTS} o"
    "   WHERE o.item_id = i.id AND o.annotator_id = %(annotator)s AND o.status = %(leased)s"
    "   LIMIT 1)"
    f" FROM {_ITEMS} i"
    " WHERE i.campaign_id = %(campaign)s AND i.complete = %(false)s"
    f" AND NOT EXISTS (SELECT 1 FROM {_ASSIGNMENTS} f WHERE f.item_id = i.id"
    "   AND f.annotator_id = %(annotator)s AND f.status <> %(leased)s)"
    f" AND i.votes_done + (SELECT COUNT(*) FROM {_ASSIGNMENTS} l WHERE l.item_id = i.id"
    "   AND l.status = %(leased)s AND l.leased_until > %(now)s"
    "   AND l.annotator_id <> %(annotator)s) < %(overlap)s"
    " ORDER BY i.position LIMIT 1"
)

# Other annotators' live leases on an item, recounted in a fresh statement under the item's
# lock (the candidate's count is from that statement's snapshot and may miss a lease
# committed since); the write happens only while a slot is free.
_SLOT_FREE = (
    f"(SELECT COUNT(*) FROM {_ASSIGNMENTS} l WHERE l.item_id = %(item)s"
    " AND l.status = %(leased)s AND l.leased_until > %(now)s"
    " AND l.annotator_id <> %(annotator)s) < %(free)s"
)
_LEASE_INSERT_SQL = (
    f"INSERT INTO {_ASSIGNMENTS}"
    " (item_id, annotator_id, a_on_left, status, leased_until, created_at)"
    " SELECT %(item)s, %(annotator)s, %(a_on_left)s, %(leased)s, %(until)s, %(now)s"
    f" WHERE {_SLOT_FREE}"
    " ON CONFLICT (item_id, annotator_id) DO NOTHING RETURNING id"
)
_LEASE_RENEW_SQL = (
    f"UPDATE {_ASSIGNMENTS} SET leased_until = %(until)s"
    f" WHERE id = %(own)s AND status = %(leased)s AND {_SLOT_FREE} RETURNING id"
)

# What the annotation page shows of an item, fetched with the lease in one query.
_ITEM_PAGE = ("item__campaign", "item__instruction", "item__output_a", "item__output_b")


def assignment_active(
    *, campaign: Campaign, annotator: Any, now: datetime | None = None
) -> Assignment | None:
    """The annotator's live lease in ``campaign``, if any (oldest first)."""
    now = now or timezone.now()
    return (
        Assignment.objects.filter(
            item__campaign=campaign,
            annotator=annotator,
            status=Assignment.Status.LEASED,
            leased_until__gt=now,
        )
        .select_related(*_ITEM_PAGE)
        .order_by("created_at", "pk")
        .first()
    )


def _active_lease_id(campaign: Campaign, annotator: Any, now: datetime) -> int | None:
    """The primary key of :func:`assignment_active`'s lease, without loading it."""
    with connection.cursor() as cursor:
        cursor.execute(
            _ACTIVE_LEASE_SQL,
            [
                campaign.pk,
                annotator.pk,
                Assignment.Status.LEASED.value,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _assignment_page(pk: int, campaign: Campaign) -> Assignment:
    """A lease with what the annotation page shows of its item, in one query."""
    assignment = Assignment.objects.select_related(
        "item__instruction", "item__output_a", "item__output_b"
    ).get(pk=pk)
    assignment.item.campaign = campaign
    return assignment


def _lock_annotator(annotator: Any) -> None:
    """Serialize one annotator's claims (a double submit asks for the next item twice at
    once; both must get the same one). A no-op where rows cannot be locked (SQLite, whose
    write transactions run one at a time anyway)."""
    if connection.features.has_select_for_update:
        # The annotator's user row as the mutex: plain SQL, this runs on every vote.
        users = get_user_model()._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {users} WHERE id = %s FOR UPDATE", [annotator.pk])


def assignment_claim_next(
    *, campaign: Campaign, annotator: Any, now: datetime | None = None
) -> Assignment | None:
    """Lease the annotator's next item in ``campaign``; None when nothing is left for them.

    A live lease the annotator already holds is returned again (reloads, second tabs and
    double submits get the same item). Otherwise the first open item with a free slot is
    locked, its slots are recounted under the lock, and a lease for
    ``campaign.lease_seconds`` is written. Sides are drawn at random the first time an
    annotator gets an item and kept for that assignment.
    """
    now = now or timezone.now()
    if campaign.status != Campaign.Status.OPEN:
        return None
    for _ in range(_CLAIM_ATTEMPTS):
        # No savepoint: nothing in here raises on a lost race (the lease insert skips a
        # conflict), so a caller's transaction needs no rollback point for it.
        with transaction.atomic(savepoint=False):
            _lock_annotator(annotator)
            current = _active_lease_id(campaign, annotator, now)
            if current is not None:
                return _assignment_page(current, campaign)
            claimed, exhausted = _claim_one(campaign, annotator, now)
        if claimed is not None:
            return _assignment_page(claimed, campaign)
        if exhausted:
            return None
    return None


def _claim_one(campaign: Campaign, annotator: Any, now: datetime) -> tuple[int | None, bool]:
    """One claim attempt: (assignment id, False) on success, (None, True) when no candidate
    is left, (None, False) when the candidate was lost to a concurrent claim (try again)."""
    params = {
        "annotator": annotator.pk,
        "campaign": campaign.pk,
        "leased": Assignment.Status.LEASED.value,
        "false": False,
        "now": connection.ops.adapt_datetimefield_value(now),
        "overlap": campaign.overlap,
    }
    skip_locked = connection.features.has_select_for_update_skip_locked
    with connection.cursor() as cursor:
        if skip_locked:
            # Items another annotator is claiming right now are skipped, not waited for.
            cursor.execute(_CANDIDATE_SQL + " FOR UPDATE OF i SKIP LOCKED", params)
        else:
            cursor.execute(_CANDIDATE_SQL, params)
        row = cursor.fetchone()
        if row is None:
            if not skip_locked:
                return None, True
            # Nothing unlocked: either all is done or others hold the rest right now.
            cursor.execute(_CANDIDATE_SQL, params)
            return None, cursor.fetchone() is None
        item_id, votes_done, complete, claim_version, own_lease = row
        if not skip_locked:
            # No row locks (SQLite): an optimistic claim on the item's version.
            won = Item.objects.filter(pk=item_id, claim_version=claim_version).update(
                claim_version=F("claim_version") + 1
            )
            if won != 1:
                return None, False
            votes_done, complete = Item.objects.values_list("votes_done", "complete").get(
                pk=item_id
            )
        if complete or votes_done >= campaign.overlap:
            return None, False
        write = {
            **params,
            "item": item_id,
            "free": campaign.overlap - votes_done,
            "until": connection.ops.adapt_datetimefield_value(
                now + timedelta(seconds=campaign.lease_seconds)
            ),
        }
        if own_lease is not None:
            # The annotator's own lease had lapsed and the slot is still free: renew it.
            cursor.execute(_LEASE_RENEW_SQL, {**write, "own": own_lease})
        else:
            cursor.execute(_LEASE_INSERT_SQL, {**write, "a_on_left": bool(secrets.randbelow(2))})
        written = cursor.fetchone()
    return (None, False) if written is None else (int(written[0]), False)


def assignment_renew(*, assignment: Assignment, now: datetime | None = None) -> bool:
    """Extend a live lease (an annotator reopening the page keeps the item). False when the
    lease had already expired; the vote may still be accepted if a slot is free."""
    now = now or timezone.now()
    campaign = assignment.item.campaign
    changed = Assignment.objects.filter(
        pk=assignment.pk, status=Assignment.Status.LEASED, leased_until__gt=now
    ).update(leased_until=now + timedelta(seconds=campaign.lease_seconds))
    return changed == 1


# -- Votes ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    created: bool


_OUTCOME_FOR_A_LEFT = {
    Vote.Choice.LEFT: Vote.Outcome.A,
    Vote.Choice.RIGHT: Vote.Outcome.B,
    Vote.Choice.TIE: Vote.Outcome.TIE,
    Vote.Choice.BOTH_BAD: Vote.Outcome.BOTH_BAD,
    Vote.Choice.SKIP: Vote.Outcome.SKIP,
}
_SWAP = {Vote.Outcome.A: Vote.Outcome.B, Vote.Outcome.B: Vote.Outcome.A}


def outcome_from_choice(choice: str, *, a_on_left: bool) -> str:
    """Undo the screen layout: what the annotator pressed, in the item's canonical order.

    >>> outcome_from_choice("left", a_on_left=False)
    'b'
    >>> outcome_from_choice("tie", a_on_left=False)
    'tie'
    """
    outcome = _OUTCOME_FOR_A_LEFT[Vote.Choice(choice)]
    if not a_on_left:
        outcome = _SWAP.get(outcome, outcome)
    return str(outcome.value)


def vote_record(
    *,
    assignment: Assignment,
    choice: str,
    rationale: str = "",
    skip_reason: str = "",
    now: datetime | None = None,
) -> VoteResult:
    """Record the annotator's verdict on their assignment, at most once.

    A repeated submit returns the first vote with ``created=False`` (even when both arrive at
    the same instant: the unique constraint decides). A skip needs a reason and frees the slot
    for another annotator. A vote on an expired lease is still taken while the item has a free
    slot; otherwise :class:`LeaseLost` is raised and nothing is written.
    """
    now = now or timezone.now()
    if choice not in Vote.Choice.values:
        raise ValidationError({"choice": f"unknown choice {choice!r}"})
    skip_reason = skip_reason.strip()
    if choice == Vote.Choice.SKIP and not skip_reason:
        raise ValidationError({"skip_reason": "say why you skip this item"})
    item = assignment.item
    overlap = item.campaign.overlap
    counted = choice != Vote.Choice.SKIP
    outcome = outcome_from_choice(choice, a_on_left=assignment.a_on_left)
    try:
        with transaction.atomic():
            if counted and assignment.leased_until <= now:
                # The lease lapsed: the slot may have gone to someone else. Decide under the
                # item's lock, which every claim takes too.
                locked = Item.objects.select_for_update().get(pk=item.pk)
                if _slots_taken(locked, assignment.annotator_id, now) >= overlap and not (
                    Vote.objects.filter(item=item, annotator_id=assignment.annotator_id).exists()
                ):
                    raise LeaseLost(
                        "your lease on this item expired and other annotators completed it; "
                        "your vote was not needed"
                    )
            # First statement that writes: a concurrent twin blocks here on the unique index
            # until this one commits, then fails with IntegrityError (handled below).
            vote = Vote.objects.create(
                item=item,
                annotator_id=assignment.annotator_id,
                assignment=assignment,
                choice=choice,
                outcome=outcome,
                left_system_id=item.system_a_id if assignment.a_on_left else item.system_b_id,
                winner_id={"a": item.system_a_id, "b": item.system_b_id}.get(outcome),
                rationale=rationale.strip(),
                skip_reason=skip_reason if choice == Vote.Choice.SKIP else "",
            )
            Assignment.objects.filter(pk=assignment.pk).update(
                status=Assignment.Status.VOTED if counted else Assignment.Status.SKIPPED,
                completed_at=now,
            )
            if counted:
                # One statement: the row lock of the UPDATE makes the counter and the flag
                # consistent however many votes land at once.
                Item.objects.filter(pk=item.pk).update(
                    votes_done=F("votes_done") + 1,
                    complete=ExpressionWrapper(
                        Q(votes_done__gte=overlap - 1), output_field=BooleanField()
                    ),
                )
    except IntegrityError:
        existing = Vote.objects.filter(
            item_id=assignment.item_id, annotator_id=assignment.annotator_id
        ).first()
        if existing is None:
            raise
        return VoteResult(existing, created=False)
    return VoteResult(vote, created=True)


def vote_and_claim_next(
    *,
    assignment: Assignment,
    annotator: Any,
    choice: str,
    rationale: str = "",
    skip_reason: str = "",
) -> tuple[str, Assignment | None]:
    """Record the vote (see :func:`vote_record`) and lease the annotator's next item, in one
    transaction: one commit per vote. Returns a notice for the annotator (empty, or why the
    vote was not needed) and the next assignment (None when nothing is left).

    The vote never depends on the claim: a claim that fails rolls back to its own savepoint
    and is tried again after the vote is committed. ``ValidationError`` writes nothing.
    """
    notice = ""
    retry_claim = False
    following: Assignment | None = None
    campaign = assignment.item.campaign
    with transaction.atomic():
        try:
            vote_record(
                assignment=assignment,
                choice=choice,
                rationale=rationale,
                skip_reason=skip_reason,
            )
        except LeaseLost as exc:
            notice = str(exc)
        try:
            with transaction.atomic():
                following = assignment_claim_next(campaign=campaign, annotator=annotator)
        except DatabaseError:
            logger.warning("claim after a vote failed; retrying after the commit", exc_info=True)
            retry_claim = True
    if retry_claim:
        following = assignment_claim_next(campaign=campaign, annotator=annotator)
    return notice, following


# -- Judge runs -----------------------------------------------------------------------------------


def judge_run_create(
    *, campaign: Campaign, spec: Mapping[str, Any], created_by: Any = None, enqueue: bool = True
) -> JudgeRun:
    """Queue the judge on every item of ``campaign`` in both orders (judge queue).

    ``spec`` is a ``JudgeSpec`` dict; it is validated here so a bad spec fails on the form,
    not in the worker.
    """
    from rl_engine.judging import JudgeSpec

    try:
        judge_spec = JudgeSpec.from_dict(spec)
    except (TypeError, ValueError) as exc:
        raise ValidationError({"spec": str(exc)}) from exc
    name = judge_spec.model or judge_spec.kind
    with transaction.atomic():
        judge_run = JudgeRun.objects.create(
            campaign=campaign, judge_name=name, spec=judge_spec.to_dict(), created_by=created_by
        )
        if enqueue:
            from workers.tasks.annotation import enqueue_judging

            transaction.on_commit(lambda: enqueue_judging(judge_run.pk))
    return judge_run


def judge_outcome(verdict: str, order: str) -> str:
    """A judge's verdict letter undone into the item's canonical order: ``a``, ``b``, ``tie``,
    or ``""`` for INVALID. In order ``ba`` system B's text was shown first (as A).

    >>> judge_outcome("A", "ab"), judge_outcome("A", "ba"), judge_outcome("INVALID", "ba")
    ('a', 'b', '')
    """
    outcome = {"A": "a", "B": "b", "TIE": "tie"}.get(verdict, "")
    if order == "ba" and outcome in ("a", "b"):
        outcome = "b" if outcome == "a" else "a"
    return outcome


def judge_votes_store(*, judge_run: JudgeRun, rows: Sequence[Mapping[str, Any]]) -> int:
    """Store judge verdicts (one dict per item and order); re-running keeps earlier rows."""
    created = JudgeVote.objects.bulk_create(
        [JudgeVote(judge_run=judge_run, **row) for row in rows], ignore_conflicts=True
    )
    return len(created)


def judge_run_mark(*, judge_run_id: int, status: str, error: str = "") -> None:
    finished = (
        timezone.now() if status in (JudgeRun.Status.SUCCEEDED, JudgeRun.Status.FAILED) else None
    )
    JudgeRun.objects.filter(pk=judge_run_id).update(
        status=status, error=error, finished_at=finished
    )


def campaign_close(*, campaign: Campaign) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    campaign.status = Campaign.Status.CLOSED


__all__ = [
    "LeaseLost",
    "SystemSpec",
    "VoteResult",
    "assignment_active",
    "assignment_claim_next",
    "assignment_renew",
    "campaign_build_items",
    "campaign_close",
    "campaign_create",
    "campaign_fail",
    "campaign_missing_outputs",
    "judge_outcome",
    "judge_run_create",
    "judge_run_mark",
    "judge_votes_store",
    "outcome_from_choice",
    "system_default_label",
    "system_outputs_store",
    "vote_and_claim_next",
    "vote_record",
]
