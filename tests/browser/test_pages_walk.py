"""Walks through the pages in Chromium as researchers and annotators use them (issue 18):

* the run page: charts with an x-axis label, whole-number steps and per-step hover values,
  smoothing, the configuration table, checkpoints, the metrics CSV, and the compare-runs
  overlay chosen from the run list;
* navigation and pages: the skip link, a nav that fits 390 px, cross-links between Benchmarks
  and Human evaluation, the dataset page's search, readable criteria and expandable prompts,
  a selection's link to an instruction on another page of the dataset, a tier change whose
  reason is required and whose audit entry says from → to, styled 404 and 403 pages;
* queue visibility: a queued run names its queue, its place, the run ahead and whether a
  worker serves the queue.

The data is written straight to the database (no worker): what is walked is the pages."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.services import require_chromium
from tests.webapp.evals.factories import make_checkpoint
from tests.webapp.studio_views.factories import make_dataset, make_run, make_selection
from webapp.studio.models import AuditLog, CurriculumState, Instruction, Run
from webapp.studio.roles import grant_researcher

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

PASSWORD = "pw-walk-7310"


@pytest.fixture
def chromium() -> None:
    require_chromium()


def log_in(browser: Any, base: str, username: str, **context_args: Any) -> Any:
    page = browser.new_context(**context_args).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url(re.compile(r".*/(studio|annotate)/$"))
    return page


def test_a_researcher_reads_a_run_page_and_overlays_two_runs(
    chromium: None, transactional_db: None, live_server: Any, browser: Any
) -> None:
    grant_researcher(User.objects.create_user("rhea", password=PASSWORD))
    dataset = make_dataset("tides", instructions=3)
    run = make_run(dataset, name="tides-a", steps=6, status=Run.Status.SUCCEEDED)
    run.config = {**run.config, "learning_rate": 1e-5, "num_generations": 4, "seed": 7}
    run.save(update_fields=["config"])
    make_run(dataset, name="tides-b", steps=2, status=Run.Status.SUCCEEDED)
    for step in (3, 6):
        make_checkpoint(run, step, path=f"/runs/tides-a/checkpoint-{step}")
    base = live_server.url
    page = log_in(browser, base, "rhea")

    # Compare: tick both runs on the run list; one set of charts overlays both.
    page.goto(f"{base}/studio/runs/")
    page.check("input[aria-label='Compare tides-a']")
    page.check("input[aria-label='Compare tides-b']")
    page.click("text=Compare the chosen runs")
    page.wait_for_url(re.compile(r"/studio/runs/compare/\?run=\d+&run=\d+$"))
    charts = page.locator("#compare-charts figure.chart")
    assert charts.count() >= 1
    first = charts.first
    assert first.locator("polyline:not(.raw)").count() == 2  # one line per run
    legend = first.locator(".legend").inner_text()
    assert "tides-a" in legend and "tides-b" in legend

    # The run page: an x-axis label, whole steps only (2 steps no longer read 1.2, 1.4...).
    page.click("main p a >> text=tides-b")
    page.wait_for_url(re.compile(r"/studio/runs/\d+/$"))
    x_ticks = page.evaluate(
        """() => [...document.querySelectorAll('#progress figure.chart svg')]
            .filter(svg => [...svg.querySelectorAll('text.axis-label')]
                           .some(t => t.textContent === 'step'))
            .flatMap(svg => [...svg.querySelectorAll(
                'text.tick[text-anchor=middle]:not(.axis-label)')].map(t => t.textContent))"""
    )
    assert x_ticks and all(re.fullmatch(r"\d+", t) for t in x_ticks), x_ticks

    # A finished run's page asks for its log once (htmx), not again after every swap.
    log_requests: list[str] = []
    page.on("request", lambda r: log_requests.append(r.url) if "/log/" in r.url else None)
    page.goto(f"{base}/studio/runs/{run.pk}/")
    page.wait_for_selector("#run-log:not([hx-get])", state="attached")
    page.wait_for_timeout(1500)
    assert len(log_requests) == 1, log_requests
    # Hovering a step highlights its column; its title lists every series' value there.
    band = page.locator("#progress figure.chart rect.hover-band").first
    before = band.evaluate("el => getComputedStyle(el).fill")
    band.hover()
    assert band.evaluate("el => getComputedStyle(el).fill") != before
    assert re.match(r"step 1: .*\d", band.locator("title").text_content())

    # Smoothing: the smoothed curve is drawn over the faint raw one, and the choice sticks.
    assert page.locator("#progress polyline.raw").count() == 0
    page.select_option("#chart-smooth", index=1)
    page.click(".chart-controls >> text=Apply")
    page.wait_for_url(re.compile(r"[?&]smooth="))
    assert page.locator("#progress polyline.raw").count() > 0
    assert page.locator("#chart-smooth").evaluate("el => el.selectedIndex") == 1

    # The configuration is a grouped table, not a pprint; the checkpoints are listed.
    config = page.locator("#configuration")
    assert config.locator("h3").count() >= 1
    row = config.locator("tr", has=page.locator("th", has_text=re.compile(r"^learning_rate$")))
    assert row.locator("td").inner_text().strip() in {"1e-05", "0.00001", "1e-5"}
    steps = page.locator("#checkpoints tbody td.num").all_inner_texts()
    assert steps == ["6", "3"] or steps == ["3", "6"], steps

    # The metrics download: one CSV row per step.
    href = page.get_attribute("text=Metrics per step (CSV)", "href")
    reply = page.context.request.get(base + href)
    assert reply.ok and reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text())))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert "win_rate" in rows[0]
    page.context.close()


def test_navigation_and_pages_for_a_researcher_and_an_annotator(
    chromium: None, transactional_db: None, live_server: Any, browser: Any
) -> None:
    grant_researcher(User.objects.create_user("rhea", password=PASSWORD))
    User.objects.create_user("abe", password=PASSWORD)
    dataset = make_dataset("essays", instructions=45)  # three pages of 20
    first = dataset.instructions.order_by("id").first()
    first.prompt = "A long brief. " + "Describe the harbour at dawn in detail. " * 30
    first.criteria = [{"name": "Clarity", "criteria_description": "Easy to follow."}]
    first.save()
    last = dataset.instructions.order_by("id").last()  # on the dataset's last page
    selection = make_selection(dataset, chosen=45)
    run = make_run(dataset, name="essays-run", steps=2, status=Run.Status.SUCCEEDED)
    base = live_server.url

    # A phone-sized researcher: the skip link comes first, the nav wraps inside 390 px.
    page = log_in(browser, base, "rhea", viewport={"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    assert skip.bounding_box()["y"] >= 0  # shown once focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for name in ("Datasets", "Runs", "New run", "Benchmarks", "Human evaluation"):
        link = page.locator(".mainnav a", has_text=re.compile(f"^{name}$"))
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    page.context.close()

    page = log_in(browser, base, "rhea")
    # Benchmarks and Human evaluation: one name each, and each links to the other.
    page.click(".mainnav >> text=Benchmarks")
    assert page.locator("h1").inner_text() == "Benchmarks"
    page.click("main >> text=Human evaluation")
    page.wait_for_url(re.compile(r"/annotate/$"))
    page.click("main >> text=Benchmarks")
    page.wait_for_url(re.compile(r"/evals/$"))

    # The dataset page: criteria as a list, a long prompt that opens in full, a search.
    page.goto(f"{base}/studio/datasets/{dataset.pk}/")
    article = page.locator(f"#instruction-{first.pk}")
    article.locator("summary", has_text="Criteria").click()
    assert article.locator("dl.criteria dt").inner_text() == "Clarity"
    assert "{" not in article.locator("dl.criteria").inner_text()  # no raw Python dict
    full = article.locator("details.prompt p.text")
    assert not full.is_visible()
    article.locator("details.prompt summary").click()
    assert full.is_visible() and full.inner_text().strip() == first.prompt.strip()
    page.fill("#instruction-search", last.external_id)
    page.click("#instructions >> text=Filter")
    page.wait_for_url(re.compile(r"[?&]q="))
    assert page.locator("article.instruction").count() == 1
    assert page.locator(f"#instruction-{last.pk}").is_visible()

    # A selection's link to an instruction on another page lands on it.
    page.goto(f"{base}/studio/selections/{selection.pk}/")
    page.click(f"table >> text={last.external_id}")
    page.wait_for_url(re.compile(rf"/studio/datasets/{dataset.pk}/.*#instruction-{last.pk}$"))
    target = page.locator(f"#instruction-{last.pk}")
    assert target.count() == 1 and target.is_visible()
    assert page.evaluate(
        "id => { const r = document.getElementById(id).getBoundingClientRect();"
        " return r.top >= 0 && r.top < window.innerHeight; }",
        f"instruction-{last.pk}",
    )

    # A tier change needs a reason; the audit log on the run page says from → to and why.
    sample = Instruction.objects.get(pk=first.pk)
    CurriculumState.objects.filter(run=run, instruction=sample).update(tier=0)
    page.goto(f"{base}/studio/runs/{run.pk}/samples/{sample.pk}/")
    page.fill("#id_tier", "2")
    page.click("text=Set tier")
    assert page.evaluate("document.querySelector('#id_tier_reason').validity.valueMissing")
    assert not AuditLog.objects.filter(action="curriculum.set_tier").exists()
    page.fill("#id_tier_reason", "the judge was too lenient on it")
    with page.expect_navigation():
        page.click("text=Set tier")
    page.goto(f"{base}/studio/runs/{run.pk}/")
    entry = page.locator("section.card", has=page.locator("h2", has_text="Interventions"))
    text = entry.locator("tbody tr").first.inner_text()
    assert "tier 0 → 2" in text and "the judge was too lenient on it" in text

    # A queued run says what it waits for: its queue, its place, the run ahead (a link) and
    # whether a worker serves the queue (none does here).
    first_queued = make_run(dataset, name="essays-first", steps=0, status=Run.Status.QUEUED)
    second_queued = make_run(dataset, name="essays-second", steps=0, status=Run.Status.QUEUED)
    page.goto(f"{base}/studio/runs/{second_queued.pk}/")
    wait = page.locator("#progress [data-queue-wait]")
    assert wait.get_attribute("data-queue") == "gpu"
    assert wait.get_attribute("data-position") == "2"
    assert wait.get_attribute("data-served") in {"no", "unknown"}
    if wait.get_attribute("data-served") == "no":
        assert "No worker is serving the gpu queue" in wait.inner_text()
    ahead = wait.locator("[data-queue-ahead]")
    assert first_queued.name in ahead.inner_text()
    ahead.click()
    page.wait_for_url(re.compile(rf"/studio/runs/{first_queued.pk}/$"))
    assert page.locator("#progress [data-queue-wait]").get_attribute("data-position") == "1"

    # A styled 404 with the navigation.
    assert page.goto(f"{base}/studio/no-such-page/").status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert page.locator(".mainnav a", has_text="Runs").count() == 1
    page.context.close()

    # The annotator: a styled 403 inside the site, with a way back to their campaigns.
    page = log_in(browser, base, "abe")
    assert page.goto(f"{base}/studio/").status == 403
    assert page.locator("h1").inner_text() == "Not allowed"
    assert page.locator(".mainnav a", has_text="Human evaluation").count() == 1
    assert page.locator(".mainnav a", has_text="Runs").count() == 0
    page.click("main >> text=Human evaluation")
    page.wait_for_url(re.compile(r"/annotate/$"))
    page.context.close()
