"""Annotators see a campaign's public title, never its internal name; a GET leases nothing."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from django.test import Client

from tests.webapp.annotation.factories import make_campaign
from webapp.annotation.models import Assignment


def test_annotators_never_see_the_internal_name(annotator: User, annotator_client: Client) -> None:
    campaign = make_campaign([annotator], name="Base vs demo run")
    campaign.public_title = "Short stories, round 2"
    campaign.save()
    pages = [
        annotator_client.get("/annotate/").content.decode(),
        annotator_client.get(f"/annotate/campaigns/{campaign.pk}/work/").content.decode(),
    ]
    claimed = annotator_client.post(f"/annotate/campaigns/{campaign.pk}/work/")
    pages.append(annotator_client.get(claimed["Location"]).content.decode())
    for html in pages:
        assert "Short stories, round 2" in html
        assert "Base vs demo run" not in html and "demo run" not in html


def test_without_a_public_title_annotators_see_a_number(
    annotator: User, annotator_client: Client
) -> None:
    campaign = make_campaign([annotator], name="SFT vs GRPO")
    html = annotator_client.get("/annotate/").content.decode()
    assert f"Comparison {campaign.pk}" in html and "GRPO" not in html


def test_a_get_of_the_work_page_creates_no_lease(annotator: User, annotator_client: Client) -> None:
    campaign = make_campaign([annotator])
    for _ in range(3):
        response = annotator_client.get(f"/annotate/campaigns/{campaign.pk}/work/")
        assert response.status_code == 200
        assert re.search(r'<form method="post" action="/annotate/campaigns/\d+/work/">',
                         response.content.decode())  # fmt: skip
    assert not Assignment.objects.exists()
    assert annotator_client.post(f"/annotate/campaigns/{campaign.pk}/work/").status_code == 302
    assert Assignment.objects.filter(annotator=annotator).count() == 1


def test_a_researcher_sets_the_public_title_when_creating_a_campaign(
    researcher_client: Client, annotator: User
) -> None:
    from tests.webapp.studio_views.factories import make_dataset

    dataset = make_dataset(references=3)
    response = researcher_client.post(
        "/annotate/campaigns/new/",
        {
            "name": "tier 0 vs tier 2", "public_title": "Essays A", "dataset": dataset.pk,
            "limit": 2, "reference_tiers": [0, 2], "overlap": 1, "lease_minutes": 30,
            "max_new_tokens": 16, "annotators": [annotator.pk],
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    from webapp.annotation.models import Campaign

    assert Campaign.objects.get().annotator_title == "Essays A"
