"""Adding a stronger reference mid-run: new top tier, the run's ladder grows, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from tests.webapp.studio_views.factories import make_dataset, make_run
from webapp.studio.models import AuditLog, CurriculumState, CurriculumTransition, Reference, Run
from webapp.studio.services.interventions import ADD_REFERENCE, reference_add


def test_it_adds_the_new_top_tier_and_extends_the_run(
    staff_client: Client, researcher: User
) -> None:
    run = make_run(make_dataset(references=3), steps=2)
    sample = run.dataset.instructions.order_by("id")[1]
    url = f"/studio/runs/{run.pk}/samples/{sample.pk}/reference/"
    text = "A much stronger essay.\n\nWith two paragraphs."
    response = staff_client.post(
        url, {"text": text, "writer": "gpt-judge-edit", "reason": "ceiling", "shared": "on"}
    )
    assert response.status_code == 302
    reference = Reference.objects.get(instruction=sample, tier=3)
    assert reference.text == text  # kept exactly as written
    assert reference.source == Reference.Source.MANUAL and reference.added_by == researcher
    state = CurriculumState.objects.get(run=run, instruction=sample)
    assert state.num_tiers == 4 and state.tier == 0
    entry = AuditLog.objects.get(action=ADD_REFERENCE)
    assert entry.run == run and entry.details["tier"] == 3
    assert entry.details["run_state"]["after"]["num_tiers"] == 4
    page = staff_client.get(response["Location"]).content.decode()
    assert "Added a tier-3 reference by gpt-judge-edit" in page


def test_it_moves_a_mastered_sample_up_to_the_new_reference(db: None, researcher: User) -> None:
    run = make_run(make_dataset(references=2), steps=4)
    sample = run.dataset.instructions.order_by("id")[0]
    CurriculumState.objects.filter(run=run, instruction=sample).update(tier=1, mastered=True)
    reference_add(instruction=sample, text="Better.", writer="human", user=researcher, run=run)
    state = CurriculumState.objects.get(run=run, instruction=sample)
    assert (state.tier, state.num_tiers, state.mastered) == (2, 3, False)
    manual = CurriculumTransition.objects.get(
        run=run, instruction=sample, cause=CurriculumTransition.Cause.MANUAL
    )
    assert (manual.from_tier, manual.to_tier, manual.step) == (1, 2, 4)


def test_it_refuses_an_empty_text_inline_and_changes_nothing(staff_client: Client) -> None:
    run = make_run(make_dataset(references=2), steps=1)
    sample = run.dataset.instructions.first()
    url = f"/studio/runs/{run.pk}/samples/{sample.pk}/reference/"
    response = staff_client.post(
        url, {"text": "   \n", "writer": "me", "reason": "r", "shared": "on"}
    )
    assert response.status_code == 400
    assert "The reference text is empty." in response.content.decode()
    assert Reference.objects.filter(instruction=sample).count() == 2
    assert not AuditLog.objects.exists()


def test_it_adds_a_reference_without_a_run(db: None, researcher: User) -> None:
    dataset = make_dataset(references=1)
    sample = dataset.instructions.first()
    reference = reference_add(instruction=sample, text="t", writer="w", user=researcher)
    assert reference.tier == 1
    assert AuditLog.objects.get(action=ADD_REFERENCE).run is None


def test_it_refuses_a_run_that_does_not_train_the_instruction(db: None, researcher: User) -> None:
    run = make_run(make_dataset("a"), steps=1)
    stranger = make_dataset("b").instructions.first()
    with pytest.raises(ValidationError):
        reference_add(instruction=stranger, text="t", writer="w", user=researcher, run=run)
    assert Reference.objects.filter(instruction=stranger).count() == 3  # rolled back


def test_it_extends_every_active_run_that_trains_the_instruction(
    db: None, researcher: User
) -> None:
    dataset = make_dataset(references=2)
    sample = dataset.instructions.first()
    current = make_run(dataset, name="current", steps=1)
    queued = make_run(dataset, name="queued", steps=0, status=Run.Status.QUEUED)
    finished = make_run(dataset, name="finished", steps=1, status=Run.Status.SUCCEEDED)
    reference_add(instruction=sample, text="t", writer="w", user=researcher, run=current)
    ladders = dict(
        CurriculumState.objects.filter(instruction=sample).values_list("run__name", "num_tiers")
    )
    assert ladders == {"current": 3, "queued": 3, "finished": 2}
    details = AuditLog.objects.get(action=ADD_REFERENCE).details
    assert set(details["other_runs"]) == {str(queued.pk)}
    assert str(finished.pk) not in details["other_runs"]


def test_adding_to_the_shared_dataset_must_be_confirmed(staff_client: Client) -> None:
    run = make_run(make_dataset(), steps=1)
    sample = run.dataset.instructions.order_by("id").first()
    url = f"/studio/runs/{run.pk}/samples/{sample.pk}/reference/"
    before = Reference.objects.filter(instruction=sample).count()
    response = staff_client.post(url, {"text": "Better.", "writer": "me", "reason": "ceiling"})
    assert response.status_code == 400
    assert "added to the shared dataset" in response.content.decode()
    assert Reference.objects.filter(instruction=sample).count() == before
