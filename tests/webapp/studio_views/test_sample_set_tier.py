"""Setting a sample's tier mid-run: the view and the service (atomic, audited, manual cause)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import AuditLog, CurriculumState, CurriculumTransition, Run
from webapp.studio.services.interventions import SET_TIER, curriculum_set_tier


def sample_of(run: Run, index: int = 1):
    return run.dataset.instructions.order_by("id")[index]


def test_it_sets_the_tier_and_records_transition_and_audit(
    staff_client: Client, researcher: User
) -> None:
    run = make_run(make_dataset(references=4), steps=5)
    sample = sample_of(run)
    url = f"/studio/runs/{run.pk}/samples/{sample.pk}/tier/"
    response = staff_client.post(url, {"tier": 3, "reason": "reference 1 and 2 are too close"})
    assert response.status_code == 302
    state = CurriculumState.objects.get(run=run, instruction=sample)
    assert state.tier == 3 and not state.mastered
    transition = CurriculumTransition.objects.get(run=run, instruction=sample)
    assert (transition.step, transition.from_tier, transition.to_tier) == (5, 0, 3)
    assert transition.cause == CurriculumTransition.Cause.MANUAL
    entry = AuditLog.objects.get(action=SET_TIER)
    assert entry.actor == researcher and entry.run == run and entry.instruction == sample
    assert entry.details["before"]["tier"] == 0 and entry.details["after"]["tier"] == 3
    assert entry.details["reason"] == "reference 1 and 2 are too close"
    page = staff_client.get(response["Location"]).content.decode()
    assert "is now at tier 3" in page and "manual intervention" in page
    run_page = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert SET_TIER in run_page


def test_it_refuses_a_tier_out_of_range_and_changes_nothing(staff_client: Client) -> None:
    run = make_run(make_dataset(references=3), steps=2)
    sample = sample_of(run)
    response = staff_client.post(
        f"/studio/runs/{run.pk}/samples/{sample.pk}/tier/", {"tier": 3, "reason": "try the top"}
    )
    assert response.status_code == 400
    assert "Tier must be between 0 and 2; got 3." in response.content.decode()
    assert CurriculumState.objects.get(run=run, instruction=sample).tier == 0
    assert not AuditLog.objects.filter(action=SET_TIER).exists()
    assert not CurriculumTransition.objects.filter(instruction=sample).exists()


def test_it_refuses_non_researchers_in_the_service(db: None, annotator: User) -> None:
    run = make_run(make_dataset(), steps=1)
    with pytest.raises(PermissionDenied):
        curriculum_set_tier(run=run, instruction=sample_of(run), tier=1, user=annotator)
    assert not AuditLog.objects.exists()


def test_it_unmasters_a_mastered_sample(db: None, researcher: User) -> None:
    run = make_run(make_dataset(references=2), steps=3)
    sample = sample_of(run, 0)
    CurriculumState.objects.filter(run=run, instruction=sample).update(tier=1, mastered=True)
    state = curriculum_set_tier(run=run, instruction=sample, tier=0, user=researcher, reason="")
    assert (state.tier, state.mastered) == (0, False)


def test_it_refuses_an_instruction_outside_the_run(db: None, researcher: User) -> None:
    run = make_run(make_dataset("a"), steps=1)
    stranger = make_dataset("b").instructions.first()
    with pytest.raises(ValidationError):
        curriculum_set_tier(run=run, instruction=stranger, tier=0, user=researcher)


def test_a_tier_move_needs_a_reason_and_the_audit_shows_from_and_to(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=2)
    sample = sample_of(run)
    url = f"/studio/runs/{run.pk}/samples/{sample.pk}/tier/"
    refused = staff_client.post(url, {"tier": 2})
    assert refused.status_code == 400
    assert "Say why: the reason is kept in the audit log" in refused.content.decode()
    assert CurriculumState.objects.get(run=run, instruction=sample).tier == 0
    before = CurriculumState.objects.get(run=run, instruction=sample).tier
    staff_client.post(url, {"tier": 2, "reason": "too easy"})
    html = staff_client.get(f"/studio/runs/{run.pk}/").content.decode()
    assert f"tier {before} → 2" in html and "too easy" in html
