"""Take the README's screenshots (docs/screenshots/*.png) in Chromium, from a real app.

    .venv/bin/python scripts/screenshots.py   # --fresh rebuilds its data; --out DIR

It sets up a throwaway studio of its own under var/screenshots (SQLite, no service needed):
the demo's dataset with its references (`manage.py demo_setup`: SmolLM2 writes them, the
heuristic judge orders the tiers; a few minutes on CPU the first time, then kept), two short
GRPO runs of a tiny policy with the heuristic judge, trained in this process, and a human
evaluation campaign over the reference tiers. It then starts the web server on a free local
port, opens the pages in Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) and saves:

    new-run.png  run-page.png  run-log.png  compare-runs.png  annotation.png
    annotation-390px.png

(run-log.png is the run page's "Worker log" card: the lines the training logged, as a worker
shows them.)

A later start reuses var/screenshots; `--fresh` builds it again from nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "screenshots-only-local"  # a throwaway studio on 127.0.0.1
RUNS = {
    # name: overrides of the demo's run settings (a tiny policy, so it trains in seconds)
    "tiny · dynamic references": {"seed": 3},
    "tiny · static, weakest reference": {"seed": 3, "curriculum": "static", "static_tier": 0},
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--var", type=Path, default=ROOT / "var" / "screenshots")
    parser.add_argument("--fresh", action="store_true", help="rebuild var/screenshots")
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    return parser.parse_args()


def configure(var: Path) -> dict[str, str]:
    """An environment of the studio's own: SQLite and the filesystem broker under ``var``,
    whatever the calling shell points at."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "DEBUG"}
    }
    env.update(
        WRITING_RL_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="webapp.settings",
        # Torch on one thread: the machine's other work keeps its cores.
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    os.environ.clear()
    os.environ.update(env)
    return env


def build_data(steps: int) -> dict[str, Any]:
    """Users, the demo dataset, two finished runs and a campaign; what exists is kept."""
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from rl_engine.models import save_tiny_model
    from webapp.annotation.models import Campaign
    from webapp.annotation.services.campaigns import SystemSpec, campaign_create
    from webapp.studio.demo import DATASET_NAME, RUN_CONFIG
    from webapp.studio.models import Dataset, Reference, Run
    from webapp.studio.roles import grant_researcher
    from webapp.studio.services.run_execution import run_execute
    from webapp.studio.services.runs import run_claim, run_create

    call_command("migrate", verbosity=0, interactive=False)
    researcher, _ = User.objects.get_or_create(username="researcher")
    annotator, _ = User.objects.get_or_create(username="annotator")
    for user in (researcher, annotator):
        user.set_password(PASSWORD)
        user.save()
    grant_researcher(researcher)

    # What the run logs at INFO goes to its attempt's log file (the run page's "Worker log"),
    # as in a worker started with --loglevel=INFO; nothing more is printed here.
    for name in ("webapp", "rl_engine", "workers"):
        logging.getLogger(name).setLevel(logging.INFO)

    call_command("demo_setup")  # the demo's dataset and SmolLM2 references (idempotent)
    dataset = Dataset.objects.get(name=DATASET_NAME)

    from django.conf import settings

    policy = Path(settings.WRITING_RL_MODEL_CACHE) / "tiny-policy"
    if not policy.exists():
        save_tiny_model(policy, seed=0)
    runs = []
    for name, overrides in RUNS.items():
        run = Run.objects.filter(name=name, status=Run.Status.SUCCEEDED).first()
        if run is None:
            Run.objects.filter(name=name).delete()
            config = {
                **RUN_CONFIG,
                "policy": str(policy),
                "judge": {"endpoint": "heuristic"},
                "max_steps": steps,
                "checkpoint_every": max(1, steps // 3),
                "keep_checkpoints": 3,
                "max_completion_tokens": 24,
                "learning_rate": 1e-3,
                **overrides,
            }
            run = run_create(
                name=name, dataset=dataset, config=config, owner=researcher, enqueue=False
            )
            print(f"Training {name!r} ({steps} steps of a tiny policy)...", flush=True)
            assert run_claim(run.pk, worker="screenshots")
            outcome = run_execute(run.pk, worker="screenshots")
            if outcome.get("status") != "succeeded":
                raise SystemExit(f"run {name!r} ended {outcome}")
        runs.append(run)

    campaign = Campaign.objects.filter(name="Which text reads better?").first()
    if campaign is None:
        tiers = sorted(
            set(
                Reference.objects.filter(instruction__dataset=dataset, tier__isnull=False)
                .values_list("tier", flat=True)
                .distinct()
            )
        )
        campaign = campaign_create(
            name="Which text reads better?",
            instructions=list(dataset.instructions.order_by("pk")[:4]),
            systems=[
                SystemSpec(kind="reference", reference_tier=tier, label=f"tier {tier}")
                for tier in tiers[:3]
            ],
            annotators=[annotator],
            overlap=1,
            guidelines=(
                "Read the instruction, then both texts. Prefer the text that **does what was "
                "asked**, at about the asked length, in fluent and specific prose. Press "
                "**1** for left, **2** for right, **3** for a tie, **4** if both are bad."
            ),
        )
    return {"dataset": dataset.pk, "runs": [r.pk for r in runs], "campaign": campaign.pk}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(480):  # up to 4 minutes on a busy machine
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=1)
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("the web server did not start") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the web server did not answer within 4 minutes")


def shoot(base: str, ids: dict[str, Any], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def save(page: Any, name: str, max_height: int) -> None:
        page.wait_for_load_state("networkidle")
        height = min(page.evaluate("document.documentElement.scrollHeight"), max_height)
        width = page.viewport_size["width"]
        path = out / name
        page.screenshot(
            path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": height}
        )
        saved.append(path)

    def log_in(browser: Any, username: str, **context_args: Any) -> Any:
        page = browser.new_context(**context_args).new_page()
        page.goto(f"{base}/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.press("#id_password", "Enter")
        page.wait_for_url(re.compile(r"/(studio|annotate)/$"))
        return page

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"],
        )
        desktop = {"viewport": {"width": 1280, "height": 900}}
        page = log_in(browser, "researcher", **desktop)
        page.goto(f"{base}/studio/runs/new/?dataset={ids['dataset']}")
        save(page, "new-run.png", 1800)
        first, second = ids["runs"]
        page.goto(f"{base}/studio/runs/{first}/?smooth=0.6")
        save(page, "run-page.png", 1800)
        card = page.locator("#worker-log")
        card.scroll_into_view_if_needed()
        page.wait_for_selector("#worker-log pre[data-run-log]")  # htmx loads it
        card.screenshot(path=str(out / "run-log.png"))
        saved.append(out / "run-log.png")
        page.goto(f"{base}/studio/runs/compare/?run={first}&run={second}")
        save(page, "compare-runs.png", 1400)
        page.context.close()

        for name, options in (
            ("annotation.png", desktop),
            ("annotation-390px.png", {"viewport": {"width": 390, "height": 844}}),
        ):
            page = log_in(browser, "annotator", **options)
            page.goto(f"{base}/annotate/campaigns/{ids['campaign']}/work/")
            start = page.locator("#start")
            if start.count():
                start.click()
                page.wait_for_url("**/annotate/assignments/*/")
            save(page, name, 1400 if name == "annotation.png" else 2400)
            page.context.close()
        browser.close()
    return saved


def main() -> None:
    args = parse_args()
    var = args.var.resolve()
    if args.fresh and var.exists():
        shutil.rmtree(var)
    var.mkdir(parents=True, exist_ok=True)
    env = configure(var)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    ids = build_data(args.steps)
    port = free_port()
    server = start_server(env, port)
    try:
        saved = shoot(f"http://127.0.0.1:{port}", ids, args.out.resolve())
    finally:
        server.terminate()
        server.wait(timeout=10)
    for path in saved:
        print(f"{path.relative_to(ROOT)}  {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
