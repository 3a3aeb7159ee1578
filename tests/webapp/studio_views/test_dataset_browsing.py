"""Reading a dataset: search and split filters, whole prompts on demand, readable criteria,
links to one instruction that open the page holding it, and messages in dataset ids."""

from __future__ import annotations

from django.test import Client

from tests.webapp.studio_views.factories import make_dataset
from webapp.studio.models import Instruction
from webapp.studio.templatetags.studio_text import criteria_rows


def test_search_and_split_filter_the_instructions(staff_client: Client) -> None:
    dataset = make_dataset("tides", instructions=4)
    Instruction.objects.filter(external_id="tides-3").update(
        prompt="A letter about harbours.", split="eval"
    )
    url = f"/studio/datasets/{dataset.pk}/"
    html = staff_client.get(f"{url}?q=harbour").content.decode()
    assert "tides-3" in html and "tides-0" not in html
    assert "1 match" in html
    html = staff_client.get(f"{url}?split=train").content.decode()
    assert "tides-0" in html and "tides-3" not in html
    # An unknown split is ignored rather than an error.
    assert staff_client.get(f"{url}?split=bogus").status_code == 200


def test_a_long_prompt_can_be_read_whole(staff_client: Client) -> None:
    dataset = make_dataset("long", instructions=1)
    prompt = "Write about the sea. " * 60 + "THE-VERY-END"
    Instruction.objects.filter(dataset=dataset).update(prompt=prompt)
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert '<details class="prompt">' in html
    assert "THE-VERY-END" in html  # the whole text is on the page, behind "read all"
    assert f"read all {len(prompt)} characters" in html


def test_criteria_read_as_rows_not_a_python_dict(staff_client: Client) -> None:
    dataset = make_dataset("bench", instructions=1)
    Instruction.objects.filter(dataset=dataset).update(
        criteria=[
            {"name": "Clarity", "criteria_description": "Plain words.", "weight": 2},
            {"name": "Depth", "criteria_description": "Specific facts."},
        ]
    )
    html = staff_client.get(f"/studio/datasets/{dataset.pk}/").content.decode()
    assert "<dt>Clarity</dt>" in html and "Plain words. — weight: 2" in html
    assert "{&#x27;name&#x27;" not in html


def test_criteria_rows_accept_every_shape() -> None:
    assert criteria_rows("Be brief.") == [("", "Be brief.")]
    assert criteria_rows({"tone": "warm", "max": 3}) == [("tone", "warm"), ("max", "3")]
    assert criteria_rows(["short", {"x": 1}]) == [("1.", "short"), ("2.", "x: 1")]
    assert criteria_rows(None) == [] and criteria_rows("") == []


def test_a_link_to_an_instruction_opens_the_page_that_holds_it(staff_client: Client) -> None:
    dataset = make_dataset("many", instructions=45, references=1)
    target = Instruction.objects.get(dataset=dataset, external_id="many-42")
    response = staff_client.get(f"/studio/datasets/{dataset.pk}/?instruction={target.pk}")
    html = response.content.decode()
    assert f'id="instruction-{target.pk}"' in html  # page 3 of 20 per page
    first = Instruction.objects.get(dataset=dataset, external_id="many-0")
    assert f'id="instruction-{first.pk}"' not in html


def test_the_margin_selection_error_names_dataset_ids(staff_client: Client) -> None:
    dataset = make_dataset("unscored", instructions=2)
    data = {"strategy": "margin", "k": 1, "policy": "smollm2-135m-instruct", "seed": 0}
    html = staff_client.post(f"/studio/datasets/{dataset.pk}/select/", data).content.decode()
    assert "unscored-0" in html
    assert "“smollm2-135m-instruct”" in html
    assert "smollm2-135m-instruct&#x27;&#x27;s" not in html
