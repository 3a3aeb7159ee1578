"""Running a selection pass from the dataset page."""

from __future__ import annotations

from django.test import Client

from tests.webapp.studio_views.factories import make_dataset
from webapp.studio.models import PolicyResponse, Selection


def test_it_runs_a_margin_selection_from_the_dataset_page(staff_client: Client) -> None:
    dataset = make_dataset("scored", instructions=4, references=2)
    for index, instruction in enumerate(dataset.instructions.order_by("id")):
        PolicyResponse.objects.create(
            instruction=instruction, policy="tiny", text="mine", score=float(index)
        )
    data = {"strategy": "margin", "k": 2, "policy": "tiny", "seed": 0}
    response = staff_client.post(f"/studio/datasets/{dataset.pk}/select/", data)
    selection = Selection.objects.get(dataset=dataset)
    assert response.status_code == 302
    assert response["Location"] == f"/studio/selections/{selection.pk}/"
    # Best reference scores 1.0 everywhere; the policy's weakest answers have most to learn.
    chosen = set(
        selection.entries.filter(chosen=True).values_list("instruction__external_id", flat=True)
    )
    assert chosen == {"scored-0", "scored-1"}


def test_it_explains_a_selection_that_lacks_scores(staff_client: Client) -> None:
    dataset = make_dataset("unscored", instructions=2)
    data = {"strategy": "margin", "k": 1, "policy": "tiny", "seed": 0}
    response = staff_client.post(f"/studio/datasets/{dataset.pk}/select/", data)
    assert response.status_code == 400
    assert "lack the scores margin selection needs" in response.content.decode()
    assert not Selection.objects.exists()
