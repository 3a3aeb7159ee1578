"""Manual interventions on a run's curriculum, by researchers, recorded in the audit log.

Both services are atomic: the curriculum row (or the instruction) is locked first, so an
intervention and the training loop's conditional updates never interleave half-way, and the
audit entry is written in the same transaction as the change it describes.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max

from webapp.studio.models import (
    AuditLog,
    CurriculumState,
    CurriculumTransition,
    Instruction,
    Reference,
    Run,
)
from webapp.studio.permissions import is_researcher

SET_TIER = "curriculum.set_tier"
ADD_REFERENCE = "reference.add"


def _require_researcher(user: Any) -> None:
    if not is_researcher(user):
        raise PermissionDenied("Only researchers (staff) may change a run's curriculum.")


@transaction.atomic
def curriculum_set_tier(
    *, run: Run, instruction: Instruction, tier: int, user: Any, reason: str = ""
) -> CurriculumState:
    """Move one sample of ``run`` to ``tier`` (0-based, below the sample's ``num_tiers``).

    The sample stops being mastered, a ``CurriculumTransition`` with ``cause=manual`` is written
    at the run's current step and an ``AuditLog`` entry keeps the tiers before and after and the
    reason. Raises ``ValidationError`` (nothing changes) for a tier out of range or a sample
    that is not part of the run, ``PermissionDenied`` for a non-researcher.
    """
    _require_researcher(user)
    try:
        state = CurriculumState.objects.select_for_update().get(run=run, instruction=instruction)
    except CurriculumState.DoesNotExist:
        raise ValidationError(
            f"Instruction {instruction.external_id!r} is not a sample of run {run.name!r}."
        ) from None
    if not 0 <= tier < state.num_tiers:
        raise ValidationError(
            {"tier": f"Tier must be between 0 and {state.num_tiers - 1}; got {tier}."}
        )
    before = {"tier": state.tier, "mastered": state.mastered}
    step = Run.objects.values_list("current_step", flat=True).get(pk=run.pk)
    CurriculumTransition.objects.create(
        run=run,
        instruction=instruction,
        step=step,
        from_tier=state.tier,
        to_tier=tier,
        mastered=False,
        cause=CurriculumTransition.Cause.MANUAL,
    )
    state.tier = tier
    state.mastered = False
    state.save(update_fields=["tier", "mastered", "updated_at"])
    AuditLog.objects.create(
        actor=user,
        action=SET_TIER,
        run=run,
        instruction=instruction,
        details={
            "before": before,
            "after": {"tier": tier, "mastered": False},
            "step": step,
            "reason": reason,
        },
    )
    return state


@transaction.atomic
def reference_add(
    *,
    instruction: Instruction,
    text: str,
    writer: str,
    user: Any,
    run: Run | None = None,
    reason: str = "",
) -> Reference:
    """Add ``text`` as the instruction's new strongest reference (one tier above the current top).

    With a ``run``, that run's sample gets the extra tier too, and so does the sample in every
    other queued or running run that trains this instruction (a run checks on start and on
    resume that its ladders match the references). A sample that had mastered every reference
    moves up to the new one (with a manual transition), so it has something left to beat.
    Recorded in the audit log. Raises ``ValidationError`` for an empty text or writer, or for a
    ``run`` that does not train the instruction; nothing changes then.
    """
    _require_researcher(user)
    errors = {}
    if not text.strip():
        errors["text"] = "The reference text is empty."
    if not writer.strip():
        errors["writer"] = "Name the reference's writer (a model or a person)."
    if errors:
        raise ValidationError(errors)
    # Locking the instruction serialises concurrent additions: both would pick the same tier.
    Instruction.objects.select_for_update().filter(pk=instruction.pk).first()
    top = Reference.objects.filter(instruction=instruction).aggregate(top=Max("tier"))["top"]
    new_tier = 0 if top is None else top + 1
    reference = Reference.objects.create(
        instruction=instruction,
        writer=writer.strip(),
        text=text,
        tier=new_tier,
        source=Reference.Source.MANUAL,
        added_by=user,
    )
    details: dict[str, Any] = {"tier": new_tier, "writer": reference.writer, "reason": reason}
    if run is not None:
        details["run_state"] = _extend_run_ladder(run, instruction, new_tier)
    # Every other queued or running run that trains this instruction gets the tier too: a run
    # loads its references when it starts or resumes, and refuses a ladder shorter than them.
    others = (
        Run.objects.filter(status__in=Run.ACTIVE, curriculum__instruction=instruction)
        .exclude(pk=run.pk if run is not None else None)
        .order_by("pk")
    )
    extended = {str(other.pk): _extend_run_ladder(other, instruction, new_tier) for other in others}
    if extended:
        details["other_runs"] = extended
    AuditLog.objects.create(
        actor=user,
        action=ADD_REFERENCE,
        run=run,
        instruction=instruction,
        details={**details, "reference_id": reference.pk},
    )
    return reference


def _extend_run_ladder(run: Run, instruction: Instruction, new_tier: int) -> dict[str, Any]:
    state = (
        CurriculumState.objects.select_for_update().filter(run=run, instruction=instruction).first()
    )
    if state is None:
        raise ValidationError(
            f"Instruction {instruction.external_id!r} is not a sample of run {run.name!r}."
        )
    before = {"tier": state.tier, "num_tiers": state.num_tiers, "mastered": state.mastered}
    state.num_tiers = max(state.num_tiers, new_tier + 1)
    if state.mastered:
        step = Run.objects.values_list("current_step", flat=True).get(pk=run.pk)
        CurriculumTransition.objects.create(
            run=run,
            instruction=instruction,
            step=step,
            from_tier=state.tier,
            to_tier=new_tier,
            cause=CurriculumTransition.Cause.MANUAL,
        )
        state.tier = new_tier
        state.mastered = False
    state.save(update_fields=["tier", "num_tiers", "mastered", "updated_at"])
    after = {"tier": state.tier, "num_tiers": state.num_tiers, "mastered": state.mastered}
    return {"before": before, "after": after}
