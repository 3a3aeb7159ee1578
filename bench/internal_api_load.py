"""Internal API load: what the verl reward hook's traffic costs the web app.

One verl step of the paper's size posts, per rollout, a judgment (and an outcome on a win) and
reads tiers once per sample and reward worker. This drives the three endpoints through Django's
WSGI handler in-process (no network, one thread: the server-side cost per request) against the
configured database, and prints requests per second for each.

    DATABASE_URL=postgres://root@127.0.0.1:5432/wrl_bench \\
        .venv/bin/python bench/internal_api_load.py

It creates a scratch run (a dataset of ``--samples`` instructions) and deletes it at the end.
Writes the ``## internal_api_load`` section of docs/benchmarks.md unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from webapp.studio.models import Dataset, Instruction, Run  # noqa: E402
from webapp.studio.services.curriculum_store import curriculum_initialize  # noqa: E402

TOKEN = "b" * 40
SECTION = "## internal_api_load"


def measure(client: Client, path: str, bodies: list[dict]) -> float:
    started = time.perf_counter()
    for body in bodies:
        response = client.post(path, json.dumps(body), "application/json",
                               HTTP_AUTHORIZATION=f"Bearer {TOKEN}")  # fmt: skip
        assert response.status_code == 200, response.content
    return len(bodies) / (time.perf_counter() - started)


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    start = current.find(SECTION)
    if start >= 0:
        end = current.find("\n## ", start + len(SECTION))
        current = current[:start] + current[end + 1 :] if end >= 0 else current[:start]
    path.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    settings.WRITING_RL_INTERNAL_API_TOKEN = TOKEN
    settings.ALLOWED_HOSTS = ["testserver"]
    call_command("migrate", verbosity=0)
    dataset = Dataset.objects.create(name=f"bench-internal-api-{time.time_ns()}")
    try:
        instructions = Instruction.objects.bulk_create(
            Instruction(dataset=dataset, external_id=str(i), prompt=f"Write piece {i}.")
            for i in range(args.samples)
        )
        run = Run.objects.create(name="bench", dataset=dataset, status=Run.Status.RUNNING)
        curriculum_initialize(run=run, num_tiers=[(i.pk, 4) for i in instructions])
        ids = [str(i.pk) for i in instructions]
        rollout = "word " * 3000  # a ~4k-token rollout's text
        client = Client()
        base = f"/internal/runs/{run.pk}"
        n = args.requests
        reads = [{"sample_ids": [ids[k % len(ids)]], "step": 1} for k in range(n)]
        tiers = measure(client, f"{base}/tiers", reads)
        judgments = measure(client, f"{base}/judgments", [
            {"judgments": [{"sample_id": ids[k % len(ids)], "step": 1 + k // len(ids),
                            "rollout": rollout, "reference_tier": 0, "verdict": "B",
                            "position": "second", "reward": 1.0, "rationale": "B. [[B]]",
                            "latency_s": 12.0}]}
            for k in range(n)
        ])  # fmt: skip
        outcomes = measure(client, f"{base}/outcomes", [
            {"outcomes": [{"sample_id": ids[k % len(ids)], "step": 1 + k // len(ids), "wins": 1,
                           "ties": 0, "losses": 0, "invalid": 0, "advance": True}]}
            for k in range(n)
        ])  # fmt: skip
    finally:
        Run.objects.filter(dataset=dataset).delete()  # runs protect their dataset
        dataset.delete()
    rows = [("tiers (1 sample, as of a step)", tiers), ("judgments (1 rollout, ~15 KB)", judgments),
            ("outcomes (1 win)", outcomes)]  # fmt: skip
    grpo_per_step = 3 * 256
    table = "\n".join(f"| {name} | {rate:,.0f} |" for name, rate in rows)
    slowest = min(rate for _, rate in rows)
    text = (
        f"{SECTION}\n\n"
        f"Server-side cost of the verl hook's internal API: Django's WSGI handler in-process, one "
        f"thread, {n} requests per endpoint, database `{connection.vendor}`, "
        f"{os.cpu_count()}-core {platform.machine()} CPU box "
        f"({time.strftime('%Y-%m-%d', time.gmtime())}).\n\n"
        f"| endpoint | requests/s (one thread) |\n|---|---|\n{table}\n\n"
        f"A GRPO step of the paper's size (256 rollouts) makes at most ~{grpo_per_step} such "
        f"requests: ~{grpo_per_step / slowest:.1f} s of one thread's time per step, against "
        f"steps of minutes.\n"
    )
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
