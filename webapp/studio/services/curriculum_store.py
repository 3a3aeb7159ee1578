"""The curriculum on the database: ``rl_engine.curriculum.CurriculumStore`` with the ORM.

A run's curriculum is its ``CurriculumState`` rows (one per training instruction; the engine's
``sample_id`` is ``str(instruction.pk)``). Recording outcomes is one conditional UPDATE per
batch::

    WITH v(...) AS (VALUES ...)
    UPDATE curriculumstate SET tier = CASE WHEN advance AND ... END, last_step = v.step, ...
    FROM v WHERE run = ? AND instruction = v.sid AND last_step < v.step
    RETURNING instruction, tier, mastered, last_move_step

``last_step < step`` makes every outcome idempotent: a replayed or concurrent copy of a step
matches no row, so nothing is lost and nothing advances twice, whichever process wins. The
SET expressions read the row's *current* values (PostgreSQL re-evaluates them on the newest
version after waiting for a concurrent writer), and ``last_move_step`` tells from the returned
row whether this outcome made a transition. On PostgreSQL the batch's rows are first locked in
id order so that two processes recording overlapping batches in different orders cannot
deadlock; on SQLite the transaction holds the database's write lock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager

from django.db import connection, transaction
from django.utils import timezone

from rl_engine.curriculum import StepOutcome, TierState, Transition
from webapp.studio.models import CurriculumState, CurriculumTransition, Run
from webapp.studio.services.leases import Lease

# Rows per UPDATE statement: 7 parameters each stays under SQLite's 32,766 variables.
CHUNK = 1000


def _instruction_id(sample_id: str) -> int:
    try:
        return int(sample_id)
    except (TypeError, ValueError):
        raise KeyError(f"sample id {sample_id!r} is not an instruction id") from None


def _rounds(outcomes: Sequence[StepOutcome]) -> list[list[tuple[int, StepOutcome]]]:
    """Split a batch so that each round names a sample once (an UPDATE touches a row once),
    keeping every sample's outcomes in their order."""
    rounds: list[list[tuple[int, StepOutcome]]] = []
    seen_in: dict[str, int] = {}
    for index, outcome in enumerate(outcomes):
        level = seen_in.get(outcome.sample_id, -1) + 1
        seen_in[outcome.sample_id] = level
        if level == len(rounds):
            rounds.append([])
        rounds[level].append((index, outcome))
    return rounds


class DjangoCurriculumStore:
    """The curriculum of one run, shared safely by any number of processes.

    With ``lease`` every write is fenced: it happens in a transaction that first re-takes the
    run's lease row, so a worker that was taken over records no outcome (it raises
    ``LeaseLost``)."""

    def __init__(self, run: Run | int, *, lease: Lease | None = None) -> None:
        self.run_id = run.pk if isinstance(run, Run) else int(run)
        self._table = CurriculumState._meta.db_table
        self.lease = lease

    def _transaction(self) -> AbstractContextManager[object]:
        return self.lease.fenced() if self.lease is not None else transaction.atomic()

    # -- reads -------------------------------------------------------------------------------

    def read_tiers(self, sample_ids: Sequence[str]) -> dict[str, TierState]:
        if not sample_ids:
            return {}
        wanted = {_instruction_id(sample_id): sample_id for sample_id in sample_ids}
        rows = CurriculumState.objects.filter(
            run_id=self.run_id, instruction_id__in=list(wanted)
        ).values_list("instruction_id", "tier", "num_tiers", "mastered", "last_step")
        states = {
            str(iid): TierState(tier=tier, num_tiers=n, mastered=m, last_step=last)
            for iid, tier, n, m, last in rows
        }
        missing = [sample_id for sample_id in sample_ids if sample_id not in states]
        if missing:
            raise KeyError(f"unknown sample ids in run {self.run_id}'s curriculum: {missing[:5]}")
        return {sample_id: states[sample_id] for sample_id in sample_ids}

    def snapshot(self) -> dict[str, TierState]:
        rows = CurriculumState.objects.filter(run_id=self.run_id).values_list(
            "instruction_id", "tier", "num_tiers", "mastered", "last_step"
        )
        return {
            str(iid): TierState(tier=tier, num_tiers=n, mastered=m, last_step=last)
            for iid, tier, n, m, last in rows
        }

    # -- writes ------------------------------------------------------------------------------

    def record_outcomes(self, outcomes: Sequence[StepOutcome]) -> list[Transition]:
        """Apply each outcome at most once; return the transitions made, in outcome order."""
        if not outcomes:
            return []
        ids = sorted({_instruction_id(outcome.sample_id) for outcome in outcomes})
        found: dict[int, Transition] = {}
        with self._transaction():
            # Lock in id order (no deadlocks between overlapping batches) and check every
            # sample exists before anything changes.
            present = list(
                CurriculumState.objects.select_for_update()
                .filter(run_id=self.run_id, instruction_id__in=ids)
                .order_by("id")
                .values_list("instruction_id", flat=True)
            )
            if len(present) != len(ids):
                missing = sorted(set(ids) - set(present))
                raise KeyError(
                    f"unknown sample ids in run {self.run_id}'s curriculum: {missing[:5]}"
                )
            now = timezone.now()
            for round_ in _rounds(outcomes):
                for start in range(0, len(round_), CHUNK):
                    chunk = round_[start : start + CHUNK]
                    found.update(self._apply(chunk, now))
            if found:
                CurriculumTransition.objects.bulk_create(
                    [
                        CurriculumTransition(
                            run_id=self.run_id,
                            instruction_id=int(t.sample_id),
                            step=t.step,
                            from_tier=t.from_tier,
                            to_tier=t.to_tier,
                            mastered=t.mastered,
                            cause=CurriculumTransition.Cause.TRAINING,
                        )
                        for _, t in sorted(found.items())
                    ]
                )
        return [transition for _, transition in sorted(found.items())]

    def _apply(
        self, chunk: Sequence[tuple[int, StepOutcome]], now: object
    ) -> dict[int, Transition]:
        postgres = connection.vendor == "postgresql"
        row = (
            "(%s::bigint, %s::integer, %s::integer, %s::integer, %s::integer, %s::integer, "
            "%s::integer)"
            if postgres
            else "(%s, %s, %s, %s, %s, %s, %s)"
        )
        params: list[object] = []
        for _, o in chunk:
            params += [
                int(o.sample_id),
                o.step,
                int(o.advance),
                o.wins,
                o.ties,
                o.losses,
                o.invalid,
            ]
        true = "TRUE" if postgres else "1"
        sql = f"""
            WITH v (sid, step, adv, nw, nt, nl, ni) AS (VALUES {", ".join([row] * len(chunk))})
            UPDATE {self._table} SET
                tier = CASE WHEN v.adv = 1 AND NOT {self._table}.mastered
                                 AND {self._table}.tier < {self._table}.num_tiers - 1
                            THEN {self._table}.tier + 1 ELSE {self._table}.tier END,
                mastered = CASE WHEN v.adv = 1
                                     AND {self._table}.tier >= {self._table}.num_tiers - 1
                                THEN {true} ELSE {self._table}.mastered END,
                last_move_step = CASE WHEN v.adv = 1 AND NOT {self._table}.mastered
                                      THEN v.step ELSE {self._table}.last_move_step END,
                last_step = v.step,
                attempts = {self._table}.attempts + 1,
                wins = {self._table}.wins + v.nw,
                ties = {self._table}.ties + v.nt,
                losses = {self._table}.losses + v.nl,
                invalid = {self._table}.invalid + v.ni,
                updated_at = %s
            FROM v
            WHERE {self._table}.run_id = %s AND {self._table}.instruction_id = v.sid
              AND {self._table}.last_step < v.step
            RETURNING instruction_id, tier, mastered, last_move_step
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, now, self.run_id])
            returned = {int(r[0]): (int(r[1]), bool(r[2]), int(r[3])) for r in cursor.fetchall()}
        moves: dict[int, Transition] = {}
        for index, outcome in chunk:
            state = returned.get(int(outcome.sample_id))
            if state is None or not outcome.advance:
                continue
            tier, mastered, last_move_step = state
            if last_move_step != outcome.step:
                continue  # already mastered: recorded, no move
            if mastered:
                moves[index] = Transition(outcome.sample_id, outcome.step, tier, tier, True)
            else:
                moves[index] = Transition(outcome.sample_id, outcome.step, tier - 1, tier)
        return moves

    def restore(self, snapshot: Mapping[str, TierState]) -> None:
        """Put a checkpoint's states back; samples missing from it start over at tier 0.

        Every sample whose tier or mastery changes gets a ``resume`` transition, at the step
        the run resumes from. The number of tiers stays the database's (a reference added by
        hand after the checkpoint is kept); a tier above it is clamped.
        """
        with self._transaction():
            self._restore(snapshot)

    def _restore(self, snapshot: Mapping[str, TierState]) -> None:
        states = {_instruction_id(sample_id): state for sample_id, state in snapshot.items()}
        rows = list(
            CurriculumState.objects.select_for_update().filter(run_id=self.run_id).order_by("id")
        )
        unknown = set(states) - {row.instruction_id for row in rows}
        if unknown:
            raise KeyError(
                f"snapshot names samples not in run {self.run_id}: {sorted(unknown)[:5]}"
            )
        resume_step = max((state.last_step for state in states.values()), default=-1) + 1
        transitions = []
        changed = []
        for row in rows:
            state = states.get(row.instruction_id) or TierState.initial(row.num_tiers)
            tier = min(state.tier, row.num_tiers - 1)
            mastered = state.mastered and tier == row.num_tiers - 1
            if (tier, mastered) != (row.tier, row.mastered):
                transitions.append(
                    CurriculumTransition(
                        run_id=self.run_id,
                        instruction_id=row.instruction_id,
                        step=resume_step,
                        from_tier=row.tier,
                        to_tier=tier,
                        mastered=mastered,
                        cause=CurriculumTransition.Cause.RESUME,
                    )
                )
            if (tier, mastered, state.last_step) != (row.tier, row.mastered, row.last_step):
                row.tier, row.mastered, row.last_step = tier, mastered, state.last_step
                # Keep last_move_step <= last_step: record_outcomes relies on it.
                row.last_move_step = min(row.last_move_step, state.last_step)
                changed.append(row)
        CurriculumState.objects.bulk_update(
            changed, ["tier", "mastered", "last_step", "last_move_step"], batch_size=500
        )
        CurriculumTransition.objects.bulk_create(transitions, batch_size=500)


def curriculum_initialize(*, run: Run, num_tiers: Iterable[tuple[int, int]]) -> int:
    """Create the run's curriculum rows: (instruction id, number of tiers) each at tier 0."""
    rows = [
        CurriculumState(run=run, instruction_id=iid, num_tiers=count, tier=0)
        for iid, count in num_tiers
    ]
    CurriculumState.objects.bulk_create(rows, batch_size=1000)
    return len(rows)
