"""Accessibility in Chromium: the vendored axe-core (tests/browser/vendor/axe-core, offline) runs
on every main page, as each role sees it, and no page may have a violation that axe rates
"serious" or "critical" (contrast, names of controls and links, labels, landmarks, ARIA).

Every rule axe ships runs (WCAG 2.0/2.1/2.2 A and AA and best practices); none is disabled."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.services import require_chromium
from tests.webapp.annotation.factories import make_campaign
from tests.webapp.evals.factories import make_checkpoint, make_succeeded_eval
from tests.webapp.studio_views.factories import make_dataset, make_run, make_selection
from webapp.studio.models import Run
from webapp.studio.roles import grant_researcher
from webapp.studio.services.interventions import curriculum_set_tier

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

AXE = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
PASSWORD = "pw-axe-3390"
BLOCKING = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe on the page as it is now; its violations rated serious or critical."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE.read_text())
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary}))}));"
        " }"
    )
    return [v for v in result if v["impact"] in BLOCKING]


def describe(violations: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for where, found in violations.items():
        for violation in found:
            lines.append(f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}")
            for node in violation["nodes"][:5]:
                summary = " ".join(str(node["summary"]).split())[:300]
                lines.append(f"    {node['target']} :: {summary}")
    return "\n".join(lines)


def log_in(browser: Any, base: str, username: str, **context_args: Any) -> Any:
    # The pages' CSP allows only our own scripts; axe is injected inline by the test.
    context = browser.new_context(bypass_csp=True, **context_args)
    page = context.new_page()
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")
    page.wait_for_url(re.compile(r".*/(studio|annotate)/$"))
    return page


@pytest.fixture
def chromium() -> None:
    require_chromium()


def test_the_main_pages_have_no_serious_accessibility_violations(
    chromium: None, transactional_db: None, live_server: Any, browser: Any
) -> None:
    assert AXE.read_text().startswith("/*! axe v4.")
    researcher = User.objects.create_user("rhea", password=PASSWORD)
    grant_researcher(researcher)
    annotator = User.objects.create_user("abe", password=PASSWORD)
    dataset = make_dataset("tides", instructions=4)
    dataset.instructions.filter(pk=dataset.instructions.first().pk).update(
        criteria=[{"name": "Clarity", "criteria_description": "Easy to follow."}]
    )
    selection = make_selection(dataset, chosen=2)
    run = make_run(dataset, name="tides-a", steps=6, status=Run.Status.SUCCEEDED, owner=researcher)
    other = make_run(dataset, name="tides-b", steps=4, status=Run.Status.RUNNING)
    queued = make_run(dataset, name="tides-c", steps=0, status=Run.Status.QUEUED)
    for step in (3, 6):
        make_checkpoint(run, step)
    sample = dataset.instructions.order_by("id").last()
    curriculum_set_tier(
        run=run, instruction=sample, tier=1, user=researcher, reason="the judge was too lenient"
    )
    evaluation = make_succeeded_eval("writingbench", {"score": 71.2}, name="wb eval")
    campaign = make_campaign([annotator], instructions=2, systems=2, overlap=1, name="tone")
    base = live_server.url

    researcher_pages = {
        "dashboard": "/studio/",
        "datasets list": "/studio/datasets/",
        "dataset page": f"/studio/datasets/{dataset.pk}/",
        "dataset upload": "/studio/datasets/upload/",
        "selection": f"/studio/selections/{selection.pk}/",
        "runs list": "/studio/runs/",
        "new run form": "/studio/runs/new/",
        "run page (finished, audit log)": f"/studio/runs/{run.pk}/",
        "run page (running)": f"/studio/runs/{other.pk}/",
        "run page (queued)": f"/studio/runs/{queued.pk}/",
        "compare runs": f"/studio/runs/compare/?run={run.pk}&run={other.pk}",
        "samples": f"/studio/runs/{run.pk}/samples/",
        "sample page": f"/studio/runs/{run.pk}/samples/{sample.pk}/",
        "benchmarks": "/evals/",
        "benchmark evaluation": f"/evals/{evaluation.pk}/",
        "new benchmark evaluation": "/evals/new/",
        "evaluate a run": f"/evals/runs/{run.pk}/evaluate/",
        "compare benchmark results": "/evals/compare/",
        "long-input benchmarks": "/evals/long-input/",
        "ablations": "/evals/ablations/",
        "new ablation": "/evals/ablations/new/",
        "human evaluation campaigns": "/annotate/",
        "campaign": f"/annotate/campaigns/{campaign.pk}/",
        "campaign results": f"/annotate/campaigns/{campaign.pk}/results/",
        "new campaign": "/annotate/campaigns/new/",
        "404": "/studio/no-such-page/",
    }
    violations: dict[str, list[dict[str, Any]]] = {}

    page = log_in(browser, base, "rhea")
    for name, path in researcher_pages.items():
        response = page.goto(base + path)
        assert response.status == (404 if name == "404" else 200), (name, response.status)
        violations[name] = axe_violations(page)
    page.context.close()

    # The annotator: the queue, the annotation page (desktop and phone), and the 403.
    for label, viewport in (("desktop", {"width": 1280, "height": 900}),
                            ("390 px", {"width": 390, "height": 844})):  # fmt: skip
        page = log_in(browser, base, "abe", viewport=viewport)
        page.goto(f"{base}/annotate/")
        violations[f"annotator queue ({label})"] = axe_violations(page)
        page.goto(f"{base}/annotate/campaigns/{campaign.pk}/work/")
        violations[f"start annotating ({label})"] = axe_violations(page)
        page.click("#start")
        page.wait_for_url("**/annotate/assignments/*/")
        violations[f"annotation page ({label})"] = axe_violations(page)
        page.keyboard.press("s")  # the skip dialog open
        violations[f"annotation page, skipping ({label})"] = axe_violations(page)
        assert page.goto(f"{base}/studio/").status == 403
        violations[f"403 ({label})"] = axe_violations(page)
        page.context.close()

    # Anonymous: the login page.
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(f"{base}/login/")
    violations["login"] = axe_violations(page)
    # The check itself can fail: an image without a text alternative is a critical violation.
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    assert [v["id"] for v in axe_violations(page)] == ["image-alt"]
    context.close()

    found = {where: v for where, v in violations.items() if v}
    assert not found, "serious or critical accessibility violations:\n" + describe(found)
