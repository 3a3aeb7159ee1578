"""Runs in a separate process (spawned): records curriculum outcomes with its own connection.

Kept free of Django imports at module level, so a spawned child can import it before
``django.setup()``.
"""

from __future__ import annotations

import random
from typing import Any


def record_steps(
    database_name: str, run_id: int, sample_ids: list[str], steps: int, seed: int
) -> list[tuple[str, int, int, int, bool]]:
    """Record steps 0..steps-1 (all advancing) for every sample in a seeded order."""
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = database_name
    django.setup()
    from django.db import connection

    from rl_engine.curriculum import StepOutcome
    from webapp.studio.services.curriculum_store import DjangoCurriculumStore

    store = DjangoCurriculumStore(run_id)
    order = list(sample_ids)
    random.Random(seed).shuffle(order)
    moves: list[Any] = []
    for step in range(steps):
        batch = [StepOutcome(sid, step, 1, 0, 0, 0, True) for sid in order]
        moves += [
            (t.sample_id, t.step, t.from_tier, t.to_tier, t.mastered)
            for t in store.record_outcomes(batch)
        ]
    connection.close()
    return moves
