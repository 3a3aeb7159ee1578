"""Judge checks in the studio: pick a dataset's reference pairs, ask the judge, keep the report.

:func:`judge_check_run` does it for any judge spec (the dataset page, ``manage.py
judge_check``); :func:`judge_check_before_run` is what a run's worker calls before training:
it refuses the run (``failed`` with the report's reasons) when the judge is under the run's
thresholds, unless the researcher overrode the check when creating the run.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import Prefetch

from rl_engine.judging import Judge, JudgeSpec, make_judge
from rl_engine.judging.check import (
    CheckPair,
    JudgeCheckReport,
    JudgeCheckThresholds,
    check_judge,
    sample_tier_pairs,
)
from rl_engine.training import TrainConfig
from webapp.studio.importers import criteria_text
from webapp.studio.models import AuditLog, Dataset, Instruction, JudgeCheck, Reference, Run
from webapp.studio.paths import ConfigRefused, checked_judge

log = logging.getLogger(__name__)

DEFAULT_PAIRS = 8
MAX_PAIRS = 200


class JudgeCheckError(ValueError):
    """The check cannot run: bad input (a spec, a count) or a dataset without tier pairs."""


def dataset_check_pairs(
    *,
    dataset: Dataset,
    n: int = DEFAULT_PAIRS,
    seed: int = 0,
    instruction_ids: list[int] | None = None,
) -> list[CheckPair]:
    """Up to ``n`` pairs of ``dataset``'s references from two different tiers (one pair per
    instruction; ``instruction_ids`` limits the instructions, e.g. to a run's)."""
    if not 1 <= n <= MAX_PAIRS:
        raise JudgeCheckError(f"a judge check takes 1 to {MAX_PAIRS} pairs; got {n}")
    instructions = Instruction.objects.filter(dataset=dataset).order_by("id")
    if instruction_ids is not None:
        instructions = instructions.filter(pk__in=instruction_ids)
    instructions = instructions.prefetch_related(
        Prefetch(
            "references",
            queryset=Reference.objects.filter(tier__isnull=False).order_by("tier"),
            to_attr="tiered",
        )
    )
    rows = [i for i in instructions if len({r.tier for r in i.tiered}) >= 2]
    pairs = sample_tier_pairs(
        [[(r.tier, r.text) for r in i.tiered] for i in rows],
        instructions=[i.prompt for i in rows],
        criteria=[criteria_text(i.criteria) for i in rows],
        keys=[str(i.pk) for i in rows],
        n=n,
        seed=seed,
    )
    if not pairs:
        raise JudgeCheckError(
            f"dataset {dataset.name!r} has no instruction with references in two different "
            "tiers; order the references into tiers first (Pipeline: order reference tiers)"
        )
    return pairs


def parse_judge_spec(payload: Any) -> JudgeSpec:
    """A JudgeSpec from a dict, or a JudgeCheckError naming what is wrong."""
    if not isinstance(payload, dict):
        raise JudgeCheckError(f"a judge spec is a JSON object; got {type(payload).__name__}")
    try:
        # A declared endpoint, one of its models, a local judge under the model roots, a
        # cache under the runs directory (the checked resolver every job uses).
        return checked_judge(payload)
    except ConfigRefused as error:
        raise JudgeCheckError(f"judge spec: {error.message}") from None


def judge_check_run(
    *,
    dataset: Dataset,
    spec: JudgeSpec,
    n: int = DEFAULT_PAIRS,
    seed: int = 0,
    thresholds: JudgeCheckThresholds | None = None,
    owner: Any = None,
    run: Run | None = None,
    judge: Judge | None = None,
    instruction_ids: list[int] | None = None,
) -> JudgeCheck:
    """Check the judge ``spec`` describes (or ``judge``, already built from it) on ``n`` of
    the dataset's tier pairs and store the report. A judge that cannot even be built (a
    local model that does not load, an unknown endpoint) is stored as a failed check with
    the error."""
    pairs = dataset_check_pairs(dataset=dataset, n=n, seed=seed, instruction_ids=instruction_ids)
    thresholds = thresholds or JudgeCheckThresholds()
    row = JudgeCheck(
        dataset=dataset,
        run=run,
        owner=owner if getattr(owner, "is_authenticated", False) else None,
        judge_spec=spec.to_dict(),
        judge=_spec_label(spec),
    )
    try:
        judge = judge if judge is not None else make_judge(checked_judge(spec))
        report = check_judge(judge, pairs, thresholds=thresholds)
    except Exception as error:  # the check never crashes its caller: it fails with the reason
        log.exception("judge check of %s failed to run", row.judge)
        row.error = f"{type(error).__name__}: {error}"[:4000]
        row.passed = False
        row.save()
        return row
    row.judge = report.judge[:300] or row.judge
    row.passed = report.passed
    row.parse_rate = report.parse_rate
    row.position_consistency = report.position_consistency
    row.report = report.to_dict()
    row.save()
    return row


def judge_check_before_run(*, run: Run, config: TrainConfig, judge: Judge | None = None) -> str:
    """Check the run's judge before training. Returns "" to go on, or the reason the run must
    not start. Skipped (returns "") when ``judge_check_pairs`` is 0, when the run has trained
    a step (a resume is not checked again) or when a check of this run already passed; a run
    refused by its check and resumed is checked again."""
    if config.judge_check_pairs == 0 or run.current_step > 0:
        return ""
    if JudgeCheck.objects.filter(run=run, passed=True).exists():
        return ""
    from webapp.studio.models import CurriculumState

    instruction_ids = list(
        CurriculumState.objects.filter(run=run).values_list("instruction_id", flat=True)
    )
    thresholds = JudgeCheckThresholds(
        config.judge_check_min_parse_rate, config.judge_check_min_consistency
    )
    try:
        check = judge_check_run(
            dataset=run.dataset,
            spec=config.judge,
            n=config.judge_check_pairs,
            seed=config.seed,
            thresholds=thresholds,
            owner=run.owner,
            run=run,
            judge=judge,
            instruction_ids=instruction_ids,
        )
    except JudgeCheckError as error:
        # No pair of two tiers among the run's instructions: nothing to check the judge on.
        # The run trains (its outage handling still stops it if no verdict ever comes).
        log.warning("run %s: judge check skipped: %s", run.pk, error)
        AuditLog.objects.create(
            actor=None, action="judge_check_skipped", run=run, details={"reason": str(error)}
        )
        return ""
    if check.passed:
        return ""
    reason = judge_check_reason(check)
    if config.judge_check_override:
        AuditLog.objects.create(
            actor=run.owner,
            action="judge_check_overridden",
            run=run,
            details={"judge_check": check.pk, "reason": reason},
        )
        return ""
    return reason


def judge_check_reason(check: JudgeCheck) -> str:
    """Why a failed check refuses a run, naming the stored report."""
    if check.error:
        why = f"the judge could not be checked: {check.error}"
    else:
        why = "; ".join(check.report.get("reasons", [])) or "the judge check failed"
    return f"refused by the judge check (report #{check.pk}): {why}"


def judge_check_report(check: JudgeCheck) -> JudgeCheckReport | None:
    """The stored report as the engine's dataclass (None for a check that could not run)."""
    return JudgeCheckReport.from_dict(check.report) if check.report else None


def _spec_label(spec: JudgeSpec) -> str:
    values = spec.to_dict()
    parts = [str(values.get(k)) for k in ("endpoint", "kind", "model") if values.get(k)]
    return ":".join(parts)[:300] or "judge"
