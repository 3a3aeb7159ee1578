"""Curriculum contention: 8 processes recording step outcomes into PostgreSQL at once.

Measures outcomes/s through ``DjangoCurriculumStore.record_outcomes`` (one locked, conditional
``UPDATE ... FROM (VALUES ...)`` per batch) and checks correctness against the engine's rule
(``rl_engine.curriculum.apply_outcome``): no outcome lost, no step advanced twice.

Scenarios (every process records ``--steps`` steps; outcomes are a deterministic function of
sample and step, about half advance):

- ``disjoint``: the samples are sharded over the processes (data-parallel judge workers);
- ``replayed``: every process records every outcome (a re-delivered or retried step, 8x):
  the first copy applies, the other seven must change nothing;
- ``unbatched``: ``disjoint`` with one outcome per call, the cost of not batching.

Needs PostgreSQL (``--database-url``, default postgres://root@127.0.0.1:5432/postgres); it
creates and drops its own database. Prints a table and writes the ``## curriculum_contention``
section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import platform
import re
import sys
import time
from pathlib import Path
from urllib.parse import urlparse, urlunparse

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def advance_of(sample_id: str, step: int) -> bool:
    return hashlib.blake2b(f"{sample_id}:{step}".encode(), digest_size=1).digest()[0] < 128


def _setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()


def record(
    args: tuple[str, int, list[str], int, int, int],
) -> tuple[int, float, list[tuple[str, int]]]:
    """One process: steps 0..steps-1, ``batch`` outcomes per call. Returns (outcomes, seconds,
    transitions as (sample, step))."""
    database_url, run_id, sample_ids, steps, batch, barrier_at = args
    _setup(database_url)
    from django.db import connection

    from rl_engine.curriculum import StepOutcome
    from webapp.studio.services.curriculum_store import DjangoCurriculumStore

    store = DjangoCurriculumStore(run_id)
    store.read_tiers(sample_ids[:1])  # connect before the clock starts
    while time.time() < barrier_at:
        time.sleep(0.001)
    moves: list[tuple[str, int]] = []
    started = time.perf_counter()
    count = 0
    for step in range(steps):
        outcomes = [
            StepOutcome(sid, step, wins=int(advance_of(sid, step)), ties=1, losses=1, invalid=0,
                        advance=advance_of(sid, step))
            for sid in sample_ids
        ]  # fmt: skip
        for start in range(0, len(outcomes), batch):
            chunk = outcomes[start : start + batch]
            moves += [(t.sample_id, t.step) for t in store.record_outcomes(chunk)]
            count += len(chunk)
    elapsed = time.perf_counter() - started
    connection.close()
    return count, elapsed, moves


def expected_states(sample_ids: list[str], num_tiers: int, steps: int) -> tuple[dict, int]:
    from rl_engine.curriculum import StepOutcome, TierState, apply_outcome

    states = {}
    moves = 0
    for sid in sample_ids:
        state = TierState.initial(num_tiers)
        for step in range(steps):
            outcome = StepOutcome(
                sid, step, int(advance_of(sid, step)), 1, 1, 0, advance_of(sid, step)
            )
            state, move = apply_outcome(state, outcome)
            moves += move is not None
        states[sid] = state
    return states, moves


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, {platform.system()}"
    )


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## curriculum_contention\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://root@127.0.0.1:5432/postgres")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--tiers", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()

    import psycopg

    load_before = os.getloadavg()[0]
    admin = urlparse(args.database_url)
    bench_db = f"curriculum_bench_{os.getpid()}"
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{bench_db}"')
    url = urlunparse(admin._replace(path=f"/{bench_db}"))
    try:
        _setup(url)
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        from webapp.studio.models import (
            CurriculumState,
            CurriculumTransition,
            Dataset,
            Instruction,
            Run,
        )
        from webapp.studio.services.curriculum_store import DjangoCurriculumStore

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
        dataset = Dataset.objects.create(name="bench")
        instructions = Instruction.objects.bulk_create(
            [
                Instruction(dataset=dataset, external_id=str(i), prompt="p")
                for i in range(args.samples)
            ]
        )
        sample_ids = [str(i.pk) for i in instructions]
        rows = []
        context = multiprocessing.get_context("spawn")
        scenarios = [("disjoint", args.batch, False), ("replayed", args.batch, False),
                     ("unbatched", 1, True)]  # fmt: skip
        for name, batch, small in scenarios:
            run = Run.objects.create(name=name, dataset=dataset)
            CurriculumState.objects.bulk_create(
                [
                    CurriculumState(run=run, instruction=i, num_tiers=args.tiers)
                    for i in instructions
                ]
            )
            ids = sample_ids[: max(args.samples // 10, args.processes)] if small else sample_ids
            if name == "replayed":
                shards = [ids] * args.processes
            else:
                shards = [ids[p :: args.processes] for p in range(args.processes)]
            connection.close()
            barrier_at = time.time() + 8.0  # after every spawned process has imported Django
            with context.Pool(args.processes) as pool:
                wall_start = time.time()
                results = pool.map(
                    record,
                    [(url, run.pk, shard, args.steps, batch, barrier_at) for shard in shards],
                )
                wall = time.time() - max(barrier_at, wall_start)
            outcomes = sum(r[0] for r in results)
            slowest = max(r[1] for r in results)
            moves = [m for r in results for m in r[2]]
            # Correctness: the database ends where the engine's rule says, every move once.
            store = DjangoCurriculumStore(run)
            final = store.read_tiers(ids)
            want, want_moves = expected_states(ids, args.tiers, args.steps)
            stored_moves = CurriculumTransition.objects.filter(run=run).count()
            attempts_ok = not (
                CurriculumState.objects.filter(run=run, instruction_id__in=[int(i) for i in ids])
                .exclude(attempts=args.steps)
                .exists()
            )
            correct = (
                final == want
                and len(moves) == len(set(moves)) == want_moves == stored_moves
                and attempts_ok
            )
            rows.append(
                (name, args.processes, batch, outcomes, slowest, outcomes / slowest, correct)
            )
            print(
                f"{name}: {outcomes} outcomes in {slowest:.2f} s (wall {wall:.2f} s), "
                f"correct={correct}",
                flush=True,
            )
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')

    header = (
        "| scenario | processes | outcomes per call | outcomes | seconds | outcomes/s "
        "| lost / double advance |"
    )
    lines = [header, "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for name, procs, batch, outcomes, seconds, rate, correct in rows:
        lines.append(
            f"| {name} | {procs} | {batch} | {outcomes:,} | {seconds:.2f} | {rate:,.0f} | "
            f"{'none (checked)' if correct else 'MISMATCH'} |"
        )
    table = "\n".join(lines)
    print(table)
    section = (
        "## curriculum_contention\n\n"
        f"`python bench/curriculum_contention.py` — {args.processes} processes record step "
        "outcomes "
        f"for {args.samples:,} samples × {args.steps} steps ({args.tiers} tiers) into PostgreSQL "
        f"{pg_version} through `DjangoCurriculumStore`. Target: ≥ 2,000 outcomes/s with batching. "
        "*disjoint*: samples sharded over the processes; *replayed*: every process records every "
        "outcome (7 of 8 copies must be no-ops); *unbatched*: one outcome per call (a tenth of the "
        "samples). Seconds = the slowest process. Correctness: the final tiers equal "
        "`apply_outcome` applied once per (sample, step), each transition exists exactly once, and "
        "every sample has exactly one attempt per step.\n\n"
        f"Machine: {machine()}; measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"load average {load_before:.1f} before the run (other jobs shared the machine).\n\n"
        f"{table}\n"
    )
    if not args.no_write:
        write_section(REPO / "docs" / "benchmarks.md", section)
        print("wrote docs/benchmarks.md ## curriculum_contention")
    return 0 if all(row[-1] for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
