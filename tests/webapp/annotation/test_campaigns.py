"""Creating campaigns: systems, outputs, items, generation of missing outputs, guidelines."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client

from tests.webapp.annotation.factories import LABELS, make_campaign, make_dataset
from webapp.annotation.forms import parse_imported_outputs
from webapp.annotation.markup import render_markdown
from webapp.annotation.models import Campaign, Item, System, SystemOutput
from webapp.annotation.services.campaigns import SystemSpec, campaign_create
from webapp.studio.models import Checkpoint, Dataset, Run


def test_it_builds_one_item_per_instruction_and_pair_of_systems(annotators: list[User]) -> None:
    campaign = make_campaign(annotators, instructions=2, systems=3)
    assert campaign.status == Campaign.Status.OPEN
    items = list(Item.objects.filter(campaign=campaign))
    assert len(items) == 2 * 3  # 2 instructions x C(3, 2) pairs
    pairs = {(i.instruction_id, i.system_a.label, i.system_b.label) for i in items}
    assert len(pairs) == 6
    for item in items:
        assert item.output_a.system_id == item.system_a_id
        assert item.output_a.instruction_id == item.instruction_id
        assert item.output_b.instruction_id == item.instruction_id
    assert sorted(i.position for i in items) == list(range(6))


def test_it_refuses_a_tier_that_some_instruction_lacks_and_creates_nothing(
    annotators: list[User],
) -> None:
    dataset = make_dataset(instructions=2, tiers=2)
    with pytest.raises(ValidationError, match="no reference of tier 5"):
        campaign_create(
            name="bad",
            instructions=list(dataset.instructions.all()),
            systems=[
                SystemSpec(kind="reference", reference_tier=0),
                SystemSpec(kind="reference", reference_tier=5),
            ],
            annotators=annotators,
        )
    assert not Campaign.objects.exists()
    assert not System.objects.exists()


def test_it_needs_two_systems(annotators: list[User]) -> None:
    dataset = make_dataset(instructions=1, tiers=1)
    with pytest.raises(ValidationError, match="at least two systems"):
        campaign_create(
            name="one",
            instructions=list(dataset.instructions.all()),
            systems=[SystemSpec(kind="reference", reference_tier=0)],
            annotators=annotators,
        )


def test_it_generates_missing_outputs_for_a_checkpoint_then_opens(
    annotators: list[User], tmp_path, django_capture_on_commit_callbacks
) -> None:
    from rl_engine.models import save_tiny_model
    from webapp.annotation.tasks import generate_campaign_outputs

    dataset = make_dataset(instructions=2, tiers=1)
    run = Run.objects.create(name="sft-baseline", dataset=dataset)
    checkpoint = Checkpoint.objects.create(
        run=run, step=10, path=str(save_tiny_model(tmp_path / "ckpt", seed=1))
    )
    campaign = campaign_create(
        name="gen",
        instructions=list(dataset.instructions.all()),
        systems=[
            SystemSpec(kind="reference", reference_tier=0),
            SystemSpec(kind="checkpoint", checkpoint=checkpoint),
        ],
        annotators=annotators,
        max_new_tokens=6,
        enqueue=False,
    )
    assert campaign.status == Campaign.Status.GENERATING
    assert not campaign.items.exists()
    generated = System.objects.get(campaign=campaign, kind="checkpoint")
    assert generated.label == "sft-baseline @ step 10"
    assert generated.policy == checkpoint.path

    result = generate_campaign_outputs.run(campaign.pk)  # the task body, in this process

    assert result["generated"] == {"sft-baseline @ step 10": 2}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.OPEN
    assert campaign.items.count() == 2
    assert SystemOutput.objects.filter(system=generated).count() == 2


def test_it_records_a_generation_failure_on_the_campaign(annotators: list[User]) -> None:
    from webapp.annotation.tasks import generate_campaign_outputs

    dataset = make_dataset(instructions=1, tiers=1)
    campaign = campaign_create(
        name="broken",
        instructions=list(dataset.instructions.all()),
        systems=[
            SystemSpec(kind="reference", reference_tier=0),
            SystemSpec(kind="base_policy", policy="/nonexistent/policy"),
        ],
        annotators=annotators,
        enqueue=False,
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever the loader raises, it is recorded
        generate_campaign_outputs.run(campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FAILED
    assert "/nonexistent/policy" in campaign.error


def test_it_renders_guidelines_as_markdown_without_scripts() -> None:
    html = render_markdown(
        "# Rules\n\n**Prefer** accuracy.\n\n<script>alert(1)</script>"
        "[x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<h1>Rules</h1>" in html
    assert "<strong>Prefer</strong>" in html
    assert "<script" not in html
    assert "javascript:" not in html
    assert "onerror" not in html


def test_it_reads_imported_outputs_and_names_the_bad_line(db: None) -> None:
    dataset = make_dataset(instructions=2, tiers=1)
    ok = '{"instruction_id": "q0", "response": "hello"}\n{"instruction_id": "q1", "response": "x"}'
    outputs = parse_imported_outputs(ok, "mine.jsonl", dataset)
    assert sorted(outputs.values()) == ["hello", "x"]
    from django import forms

    with pytest.raises(forms.ValidationError, match=r"mine.jsonl, line 2: field 'response'"):
        parse_imported_outputs(
            '{"instruction_id": "q0", "response": "a"}\n{"instruction_id": "q1"}',
            "mine.jsonl",
            dataset,
        )
    with pytest.raises(forms.ValidationError, match=r"line 1: field 'instruction_id': 'nope'"):
        parse_imported_outputs('{"instruction_id": "nope", "response": "a"}', "mine.jsonl", dataset)


def test_it_creates_a_campaign_from_the_form(
    client: Client, researcher: User, annotators: list[User]
) -> None:
    dataset = make_dataset(instructions=2, tiers=2)
    client.force_login(researcher)
    assert client.get("/annotate/campaigns/new/").status_code == 200
    response = client.post(
        "/annotate/campaigns/new/",
        {
            "name": "from-form",
            "dataset": dataset.pk,
            "limit": 5,
            "reference_tiers": ["0", "1"],
            "base_policy": "",
            "overlap": 2,
            "lease_minutes": 30,
            "max_new_tokens": 64,
            "guidelines": "Be fair.",
            "annotators": [a.pk for a in annotators[:2]],
        },
    )
    campaign = Campaign.objects.get(name="from-form")
    assert response.status_code == 302
    assert response["Location"] == f"/annotate/campaigns/{campaign.pk}/"
    assert campaign.items.count() == 2
    assert set(campaign.annotators.values_list("username", flat=True)) == {"ann0", "ann1"}
    assert client.get(response["Location"]).status_code == 200


def test_it_forbids_campaign_pages_to_annotators(client: Client, annotators: list[User]) -> None:
    campaign = make_campaign(annotators)
    client.force_login(annotators[0])
    assert client.get("/annotate/campaigns/new/").status_code == 403
    assert client.get(f"/annotate/campaigns/{campaign.pk}/results/").status_code == 403
    assert client.get(f"/annotate/campaigns/{campaign.pk}/votes.jsonl").status_code == 403
    assert Dataset.objects.count() == 1
    assert LABELS[0] in System.objects.values_list("label", flat=True)
