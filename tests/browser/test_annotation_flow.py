"""Two annotators finish a small campaign in Chromium with the keyboard only; the results page
counts their votes; neither can open the other's assignment; a double-clicked (and a replayed)
vote is stored once."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.services import require_chromium
from tests.webapp.annotation.factories import LABELS, make_campaign
from webapp.annotation.models import Assignment, Vote
from webapp.studio.roles import grant_researcher

pytestmark = [pytest.mark.browser]

PASSWORD = "pw-annotate-5521"


@pytest.fixture
def chromium() -> None:
    require_chromium()


def log_in(context: Any, base_url: str, username: str) -> Any:
    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_password").press("Enter")
    page.wait_for_url(re.compile(r".*/annotate/$"))
    return page


def current_assignment(page: Any) -> int:
    return int(page.locator("#item-area").get_attribute("data-assignment"))


def vote_with_keys(page: Any, *keys: str) -> int:
    """Press ``keys`` on the current item; wait until the next item (or the end) is swapped in
    without a page load. Returns the assignment voted on."""
    voted = current_assignment(page)
    for key in keys:
        page.keyboard.press(key)
    page.wait_for_function(
        "id => { const a = document.querySelector('#item-area');"
        " return a && a.dataset.assignment !== String(id); }",
        arg=voted,
    )
    assert page.evaluate("window.__sameDocument") is True  # no reload happened
    return voted


def test_it_runs_a_campaign_from_keyboard_votes_to_results(
    chromium: None, transactional_db: None, live_server: Any, browser: Any
) -> None:
    ann_a = User.objects.create_user("anna", password=PASSWORD)
    ann_b = User.objects.create_user("bert", password=PASSWORD)
    grant_researcher(User.objects.create_user("rita", password=PASSWORD))
    campaign = make_campaign(
        [ann_a, ann_b], instructions=3, systems=2, overlap=2, name="browser-campaign",
        guidelines="Prefer the **clearer** text.",
    )  # fmt: skip
    base = live_server.url

    context_a = browser.new_context()
    context_b = browser.new_context()
    page_a = log_in(context_a, base, "anna")
    page_b = log_in(context_b, base, "bert")

    # Anna: open her first item, read the guidelines (g), then tie / both bad / left.
    page_a.goto(f"{base}/annotate/campaigns/{campaign.pk}/work/")
    page_a.click("#start")  # a GET shows the Start button; the POST takes the lease
    page_a.wait_for_url("**/annotate/assignments/*/")
    page_a.evaluate("window.__sameDocument = true")
    for label in LABELS:
        assert label not in page_a.content()
    # A first visit opens the guidelines; g closes and reopens them.
    assert page_a.locator("#guidelines").evaluate("el => el.open") is True
    assert page_a.locator("#guidelines strong").inner_text() == "clearer"
    page_a.keyboard.press("g")
    assert page_a.locator("#guidelines").evaluate("el => el.open") is False
    page_a.keyboard.press("g")
    assert page_a.locator("#guidelines").evaluate("el => el.open") is True
    # 1-4 vote with one key; an arrow only selects a side, Enter then submits.
    first_a = vote_with_keys(page_a, "3")
    second_a = vote_with_keys(page_a, "4")
    third_a = vote_with_keys(page_a, "ArrowLeft", "Enter")
    page_a.locator("#all-done").wait_for()

    # Bert: left with a key, then right by mouse and a double click on Submit, then right.
    page_b.goto(f"{base}/annotate/campaigns/{campaign.pk}/work/")
    page_b.click("#start")  # a GET shows the Start button; the POST takes the lease
    page_b.wait_for_url("**/annotate/assignments/*/")
    page_b.evaluate("window.__sameDocument = true")
    first_b = vote_with_keys(page_b, "1")
    page_b.locator("#choice-right").check()
    double_clicked = current_assignment(page_b)
    # A person reads before clicking (clicks right after a swap are ignored by design).
    page_b.wait_for_timeout(500)
    page_b.locator("#submit-vote").dblclick()
    page_b.wait_for_function(
        "id => document.querySelector('#item-area').dataset.assignment !== String(id)",
        arg=double_clicked,
    )
    page_b.wait_for_load_state("networkidle")
    assert "This field is required" not in page_b.content()  # the 2nd click hit nothing new
    third_b = vote_with_keys(page_b, "2")
    page_b.locator("#all-done").wait_for()

    # Replaying a vote twice at once (two requests in flight together) changes nothing.
    statuses = page_b.evaluate(
        """async (url) => {
            // CSRF lives in the session; the page carries the token in hx-headers.
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const send = () => fetch(url, {method: 'POST', headers: {'X-CSRFToken': token},
                                           body: new URLSearchParams({choice: 'left'})});
            const replies = await Promise.all([send(), send()]);
            return replies.map(r => r.status);
        }""",
        f"{base}/annotate/assignments/{double_clicked}/vote/",
    )
    assert statuses == [200, 200]

    assert Vote.objects.filter(assignment_id=double_clicked).count() == 1
    assert Vote.objects.get(assignment_id=double_clicked).choice == "right"
    assert Vote.objects.count() == 6
    assert {first_a, second_a, third_a} | {first_b, double_clicked, third_b} == set(
        Assignment.objects.values_list("pk", flat=True)
    )

    # Neither can open the other's assignment.
    assert page_a.goto(f"{base}/annotate/assignments/{first_b}/").status == 404
    assert page_b.goto(f"{base}/annotate/assignments/{first_a}/").status == 404

    # The results page, from the researcher's side, counts what the keyboard did.
    wins = sum(
        1 for vote in Vote.objects.select_related("item") if vote.winner_id == vote.item.system_a_id
    )
    losses = sum(
        1 for vote in Vote.objects.select_related("item") if vote.winner_id == vote.item.system_b_id
    )
    assert wins + losses == 4
    context_r = browser.new_context()
    page_r = context_r.new_page()
    page_r.goto(f"{base}/login/")
    page_r.locator("#id_username").fill("rita")
    page_r.locator("#id_password").fill(PASSWORD)
    page_r.locator("#id_password").press("Enter")
    page_r.wait_for_url(re.compile(r".*/studio/$"))
    page_r.goto(f"{base}/annotate/campaigns/{campaign.pk}/results/")
    row = page_r.locator("#pair-table tbody tr").first
    assert row.locator("td.wins").inner_text() == str(wins)
    assert row.locator("td.ties").inner_text() == "1"
    assert row.locator("td.both-bad").inner_text() == "1"
    assert row.locator("td.losses").inner_text() == str(losses)
    assert row.locator("td.total").inner_text() == "6"
    assert "6 / 6" in page_r.locator("[data-testid=campaign-progress]").inner_text()
    for context in (context_a, context_b, context_r):
        context.close()


def test_a_phone_sized_annotator_votes_with_single_keys_skips_and_undoes(
    chromium: None, transactional_db: None, live_server: Any, browser: Any
) -> None:
    annotator = User.objects.create_user("pia", password=PASSWORD)
    campaign = make_campaign([annotator], instructions=3, systems=2, overlap=1, name="phone")
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = log_in(context, live_server.url, "pia")
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/work/")
    page.click("#start")
    page.wait_for_url("**/annotate/assignments/*/")
    page.evaluate("window.__sameDocument = true")

    # At 390 px the two texts are stacked, each as wide as the page, not squeezed side by side.
    left = page.locator("#response-left").bounding_box()
    right = page.locator("#response-right").bounding_box()
    assert right["y"] >= left["y"] + left["height"]
    assert left["width"] > 300
    # Nothing overflows the viewport sideways (the nav wraps).
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    # Skip with a reason; focus goes back to the page, so the next "1" is a vote, not text.
    skipped = current_assignment(page)
    page.keyboard.press("s")
    page.keyboard.type("cannot read it")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "id => document.querySelector('#item-area').dataset.assignment !== String(id)",
        arg=skipped,
    )
    assert page.evaluate("document.activeElement.id") == "item-area"
    voted = vote_with_keys(page, "1")
    assert Vote.objects.get(assignment_id=voted).choice == "left"

    # u takes the last vote back: the same item comes back, and a new key votes again.
    assert page.locator("#undo-vote").is_visible()
    page.keyboard.press("u")
    page.wait_for_function(
        "id => document.querySelector('#item-area').dataset.assignment === String(id)",
        arg=voted,
    )
    assert not Vote.objects.filter(assignment_id=voted).exists()
    vote_with_keys(page, "2")
    assert Vote.objects.get(assignment_id=voted).choice == "right"
    assert Vote.objects.get(assignment_id=skipped).skip_reason == "cannot read it"
    context.close()
