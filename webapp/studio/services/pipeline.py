"""The data pipeline before training: generate references, score them, generate and score
the policy's own responses. Each step runs as a :class:`PipelineJob` with progress.

Jobs are created (and enqueued after commit) by ``job_create``; the pipeline task
(``webapp.studio.tasks.run_pipeline_job``) calls :func:`job_run`, which claims the job and
runs its step through the ``*_run`` functions here; they report progress through
``job_progress`` and stop early when a cancel was requested.

Every write of a claimed job is fenced by its lease (``webapp.studio.services.leases``): the
work functions take a ``fence`` (a context manager factory, ``Lease.fenced``) around each
batch they store, so a worker whose job was taken over stores nothing more; a resumed job
skips what *it* already stored (keyed by the job's id, never by time).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from rl_engine.judging import HeuristicScorer, OpenAIScorer, make_scorer
from rl_engine.text import required_length
from rl_engine.writers import WriterSpec, WritingTask, make_writer
from webapp.studio.importers import criteria_text
from webapp.studio.models import (
    AuditLog,
    Dataset,
    Instruction,
    PipelineJob,
    PolicyResponse,
    Reference,
    Selection,
)
from webapp.studio.paths import checked_judge, checked_writer
from webapp.studio.services.job_outcome import error_text, job_outcome
from webapp.studio.services.leases import (
    JobKind,
    Lease,
    LeaseLost,
    StaleSweep,
    enqueue_on_commit,
    lease_claim,
    lease_heartbeat,
    lease_of,
    lease_retry,
    sweep_kind,
)
from webapp.studio.services.selection import (
    SelectionError,
    references_order,
    selection_create,
)
from webapp.studio.token_usage import job_usage_add, usage_entry
from workers.dispatch import send
from workers.queues import TaskName, pipeline_job_queue

Progress = Callable[[float, str], bool]  # (fraction, message) -> keep going?
Fence = Callable[[], AbstractContextManager[Any]]  # a transaction in which the job is held
BATCH = 8

log = logging.getLogger(__name__)


def _no_fence() -> AbstractContextManager[Any]:
    return nullcontext()


def _scorer_endpoint(spec: dict[str, Any] | None) -> str:
    return str((spec or {}).get("endpoint") or (spec or {}).get("kind") or "heuristic")


def _spent(outputs: Sequence[Any], calls: int | None = None) -> dict[str, int]:
    """The :func:`usage_entry` of writer outputs or grades (``calls`` defaults to one each)."""
    return usage_entry(
        calls=sum(getattr(o, "calls", 1) for o in outputs) if calls is None else calls,
        attempts=sum(int(o.attempts or 0) for o in outputs),
        prompt_tokens=sum(o.usage.prompt_tokens for o in outputs),
        completion_tokens=sum(o.usage.completion_tokens for o in outputs),
    )


def make_pointwise_scorer(spec: dict[str, Any] | None) -> OpenAIScorer | HeuristicScorer:
    """The heuristic (default: offline, not an LLM), or a JudgeSpec dict naming a declared
    endpoint, resolved against the deployment's endpoints now (in the worker): a spec edited
    in the database is refused (``ConfigRefused``) before any call."""
    return make_scorer(checked_judge(spec or {"endpoint": "heuristic"}, "scorer"))


# -- jobs ------------------------------------------------------------------------------------


def job_create(
    *,
    kind: str,
    dataset: Dataset,
    params: dict[str, Any],
    user: Any = None,
    enqueue: bool = True,
    depends_on: Sequence[PipelineJob] = (),
    group: uuid.UUID | None = None,
    group_label: str = "",
) -> PipelineJob:
    """Record a pipeline job and enqueue its task once the transaction commits.

    A job with inputs (``depends_on``) is created ``waiting`` and is sent only when every
    input ended ``succeeded`` or ``partial`` (see :func:`dependents_release`); one whose input
    already failed or was cancelled ends so at once, naming it."""
    if kind not in PipelineJob.Kind.values:
        raise ValueError(f"unknown pipeline job kind {kind!r}")
    inputs = list(depends_on)
    if any(job.dataset_id != dataset.pk for job in inputs):
        raise ValueError("a pipeline job may only depend on jobs of its own dataset")
    with transaction.atomic():
        job = PipelineJob.objects.create(
            kind=kind,
            dataset=dataset,
            params=params,
            owner=user if getattr(user, "is_authenticated", False) else None,
            task_id=str(uuid.uuid4()),
            status=PipelineJob.Status.WAITING if inputs else PipelineJob.Status.QUEUED,
            message=_waiting_message(inputs) if inputs else "",
            group=group,
            group_label=group_label[:200],
        )
        if inputs:
            job.depends_on.set(inputs)
            # Inputs that already ended (e.g. a step added after its input finished).
            dependents_release(job_ids=[job.pk], send=enqueue)
            job.refresh_from_db()
        elif enqueue:
            job_enqueue(job)
    return job


def _job_name(job: PipelineJob) -> str:
    return f"job #{job.pk} ({PipelineJob.Kind(job.kind).label})"


def _waiting_message(inputs: Sequence[PipelineJob]) -> str:
    return ("waiting for " + ", ".join(_job_name(job) for job in inputs))[:500]


_NOT_RUN = "not run: "
# An input that ended so ends its dependents so (with a reason naming it).
_ENDS_DEPENDENTS = {
    PipelineJob.Status.FAILED: PipelineJob.Status.FAILED,
    PipelineJob.Status.CANCELLED: PipelineJob.Status.CANCELLED,
}
# An input that ended so lets its dependents run. A ``partial`` input made part of what it
# was asked (some references written or graded): its dependents work on what exists, and
# their own outcome counts what they found.
_FEEDS_DEPENDENTS = (PipelineJob.Status.SUCCEEDED, PipelineJob.Status.PARTIAL)


def dependents_release(
    *, of: int | None = None, job_ids: Sequence[int] | None = None, send: bool = True
) -> dict[str, list[int]]:
    """Move waiting jobs on once their inputs ended: ``queued`` (and sent on commit) when
    every input ended ``succeeded`` or ``partial``; ``failed`` or ``cancelled``, naming the
    input, as soon as one input ended so (and their own dependents after them). Jobs still
    waiting for a running input are left alone.

    Which waiting jobs: the dependents of job ``of`` (called when it finished), those in
    ``job_ids``, or every waiting job (the sweep: a lost release is recovered). Each move is
    a conditional UPDATE from ``waiting``, so two callers never send a job twice."""
    moved: dict[str, list[int]] = {"queued": [], "failed": [], "cancelled": []}
    waiting = PipelineJob.objects.filter(status=PipelineJob.Status.WAITING)
    if of is not None:
        waiting = waiting.filter(depends_on=of)
    elif job_ids is not None:
        waiting = waiting.filter(pk__in=list(job_ids))
    todo = list(waiting.order_by("pk").values_list("pk", flat=True).distinct())
    while todo:
        pk = todo.pop(0)
        inputs = list(
            PipelineJob.objects.filter(dependents=pk)
            .order_by("pk")
            .only("pk", "kind", "status", "message", "error")
        )
        ended = next((job for job in inputs if job.status in _ENDS_DEPENDENTS), None)
        now = timezone.now()
        waiting_row = PipelineJob.objects.filter(pk=pk, status=PipelineJob.Status.WAITING)
        if ended is not None:
            status = _ENDS_DEPENDENTS[PipelineJob.Status(ended.status)]
            detail = (ended.message or ended.error).strip().splitlines()
            last = detail[-1] if detail else ""
            if last.startswith(_NOT_RUN):  # the input itself did not run: say why once
                reason = f"{_job_name(ended)} did not run: {last.removeprefix(_NOT_RUN)}"
            elif status == PipelineJob.Status.FAILED:
                reason = f"{_job_name(ended)} failed" + (f": {last}" if last else "")
            else:
                reason = f"{_job_name(ended)} was cancelled"
            reason = f"{_NOT_RUN}{reason}"[:500]
            fields: dict[str, Any] = {"status": status, "finished_at": now, "message": reason}
            if status == PipelineJob.Status.FAILED:
                fields["error"] = reason
            else:
                fields["cancel_requested"] = True
            if waiting_row.update(**fields) == 1:
                moved[str(status)].append(pk)
                todo.extend(
                    PipelineJob.objects.filter(depends_on=pk, status=PipelineJob.Status.WAITING)
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
            continue
        if not all(job.status in _FEEDS_DEPENDENTS for job in inputs):
            rest = [job for job in inputs if job.status not in _FEEDS_DEPENDENTS]
            waiting_row.update(message=_waiting_message(rest))
            continue
        partial = [job for job in inputs if job.status == PipelineJob.Status.PARTIAL]
        message = (
            "inputs partial ("
            + ", ".join(_job_name(job) for job in partial)
            + "): works on what they made"
            if partial
            else ""
        )
        if waiting_row.update(status=PipelineJob.Status.QUEUED, message=message[:500]) == 1:
            moved["queued"].append(pk)
            if send:
                job_enqueue(PipelineJob.objects.get(pk=pk))
    return moved


def _send_job(job: PipelineJob) -> None:
    queue = pipeline_job_queue(job.kind).value
    send(
        TaskName.RUN_PIPELINE_JOB,
        args=[job.pk],
        task_id=job.task_id or None,
        queue=queue,
        routing_key=queue,
    )


def _audit_job(job: PipelineJob, action: str, details: dict[str, Any]) -> None:
    details = {**details, "job": job.pk, "kind": job.kind, "progress": job.progress}
    AuditLog.objects.create(action=f"job_{action}", details=details)


JOB_KIND = JobKind(
    name="pipeline job",
    model=PipelineJob,
    waiting=(PipelineJob.Status.QUEUED,),
    running=(PipelineJob.Status.RUNNING,),
    cancelled=PipelineJob.Status.CANCELLED,
    send=_send_job,
    audit=_audit_job,
)


def job_enqueue(job: PipelineJob) -> None:
    """Send the job's task to the queue its kind needs, when the current transaction commits
    (a failed send leaves the job queued for the sweep)."""
    enqueue_on_commit(JOB_KIND, job)


def job_claim(job_id: int, *, worker: str = "") -> Lease | None:
    """Take the job for this worker: a queued job, or a running one whose worker was lost (the
    work resumes: see :func:`job_execute`). Its :class:`Lease` only if this call took it."""
    return lease_claim(PipelineJob, job_id, worker=worker)


def job_heartbeat(job_id: int, *, worker: str = "") -> bool:
    return lease_heartbeat(PipelineJob, job_id, worker=worker)


def jobs_recover_stale(*, now: datetime | None = None) -> StaleSweep:
    """Send the task of every job whose worker was lost, or whose message may be lost, again
    (see :func:`~webapp.studio.services.leases.sweep_kind`), audited."""
    return sweep_kind(JOB_KIND, now=now)


def job_progress(job_id: int, fraction: float, message: str, *, lease: Lease | None = None) -> bool:
    """Record progress (which is also a heartbeat); False when the job was asked to stop.
    With ``lease`` the write is fenced (``LeaseLost`` when the job was taken over)."""
    fields = {"progress": min(max(fraction, 0.0), 1.0), "message": message[:500]}
    if lease is not None:
        lease.update(**fields)
    else:
        PipelineJob.objects.filter(pk=job_id).update(**fields, heartbeat_at=timezone.now())
    return not PipelineJob.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_finish(
    job_id: int,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    error: str = "",
    worker: str = "",
    lease: Lease | None = None,
    message: str | None = None,
    progress: float | None = None,
) -> bool:
    """Record how a running job ended (with ``message`` and ``progress`` when given); False
    (writing nothing) when this worker no longer holds it (it was taken over after its
    heartbeat went stale)."""
    fields: dict[str, Any] = {"finished_at": timezone.now(), "error": error}
    if result is not None:
        fields["result"] = result
    if status == PipelineJob.Status.SUCCEEDED:
        fields["progress"] = 1.0
    if message is not None:
        fields["message"] = message[:500]
    if progress is not None:
        fields["progress"] = min(max(progress, 0.0), 1.0)
    if lease is None and worker:
        lease = lease_of(PipelineJob, job_id, worker=worker)
        if lease is None:
            return False
    if lease is not None:
        finished = lease.finish(status, **fields)
    else:
        query = PipelineJob.objects.filter(pk=job_id, status=PipelineJob.Status.RUNNING)
        finished = query.update(status=status, **fields) == 1
    if finished:
        # Only the holder's finish moves the jobs that wait for this one, once it committed
        # (a release lost with the worker is done by the sweep: ``dependents_release()``).
        transaction.on_commit(lambda: dependents_release(of=job_id))
    return finished


def job_retry_blocked(job: PipelineJob) -> str:
    """Why ``job`` cannot be retried yet ("" when it can): one of its inputs ended failed or
    cancelled, so a retried job would only end the same way again."""
    ended = (PipelineJob.Status.FAILED, PipelineJob.Status.CANCELLED)
    blocking = job.depends_on.filter(status__in=ended).order_by("pk").first()
    if blocking is None:
        return ""
    return (
        f"job #{job.pk} needs job #{blocking.pk} ({blocking.kind}), which {blocking.status}: "
        f"retry job #{blocking.pk} first"
    )


@transaction.atomic
def job_retry(*, job: PipelineJob, user: Any = None) -> bool:
    """Queue a failed job again (the same row, a new lease epoch): the worker that claims it
    resumes from what the job stored. Audited as ``job_retry``; False when it had not failed
    or an input of it is still failed or cancelled (:func:`job_retry_blocked`)."""
    if job_retry_blocked(job):
        return False
    before = PipelineJob.objects.filter(pk=job.pk).values("error", "message", "epoch").first()
    retried = lease_retry(
        JOB_KIND, job.pk, failed=(PipelineJob.Status.FAILED,), to=PipelineJob.Status.QUEUED,
        error="", message="", finished_at=None, cancel_requested=False,
    )  # fmt: skip
    if retried and before is not None:
        AuditLog.objects.create(
            actor=user if getattr(user, "is_authenticated", False) else None,
            action="job_retry",
            details={
                "job": job.pk, "kind": job.kind, "epoch_before": before["epoch"],
                "error_before": (before["error"] or before["message"])[-1000:],
            },
        )  # fmt: skip
    return retried


def job_cancel(*, job: PipelineJob) -> None:
    """Cancel a job: a waiting or queued one at once (and the jobs that wait for it), a
    running one when its worker next reports progress."""
    waiting = (PipelineJob.Status.QUEUED, PipelineJob.Status.WAITING)
    cancelled = PipelineJob.objects.filter(pk=job.pk, status__in=waiting).update(
        status=PipelineJob.Status.CANCELLED, finished_at=timezone.now(), cancel_requested=True
    )
    PipelineJob.objects.filter(pk=job.pk, status=PipelineJob.Status.RUNNING).update(
        cancel_requested=True
    )
    if cancelled:
        transaction.on_commit(lambda: dependents_release(of=job.pk))


# -- the work ----------------------------------------------------------------------------------


def _instructions(dataset: Dataset, params: dict[str, Any]) -> list[Instruction]:
    query = Instruction.objects.filter(dataset=dataset).order_by("id")
    if params.get("instruction_ids"):
        query = query.filter(pk__in=params["instruction_ids"])
    if params.get("split"):
        query = query.filter(split=params["split"])
    return list(query)


def _required(instruction: Instruction) -> int | None:
    return instruction.required_words or required_length(instruction.prompt)


def references_generate(
    *,
    dataset: Dataset,
    writers: Sequence[dict[str, Any] | WriterSpec],
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    models: dict[str, Any] | None = None,
    job_id: int | None = None,
    fence: Fence = _no_fence,
) -> dict[str, Any]:
    """Write one reference per (instruction, writer); failed generations are counted, not
    stored. Local writers naming the same model share it (``models`` may pass loaded
    ``(model, tokenizer)`` pairs by name).

    With ``job_id`` each reference records the job, and a job resumed after its worker was
    lost skips the (instruction, writer) pairs it had already written (``resumed``)."""
    params = params or {}
    # Every writer is resolved and checked before the first reference is written.
    specs = [checked_writer(w, f"writer {n}") for n, w in enumerate(writers, 1)]
    every_instruction = _instructions(dataset, params)
    loaded = dict(models or {})
    total = max(len(specs) * len(every_instruction), 1)
    already: set[tuple[int, str]] = set()
    if job_id is not None:
        already = set(
            Reference.objects.filter(
                instruction__dataset=dataset, metadata__job=job_id
            ).values_list("instruction_id", "writer")
        )
    done = written = failed = resumed = fallbacks = 0
    errors: list[str] = []
    for spec in specs:
        instructions = [i for i in every_instruction if (i.pk, spec.name[:200]) not in already]
        resumed += len(every_instruction) - len(instructions)
        done += len(every_instruction) - len(instructions)
        if not instructions:
            continue
        local: dict[str, Any] = {}
        if spec.kind == "local":
            key = spec.model or "smollm2-135m-instruct"
            if key not in loaded:
                from rl_engine.models import load_policy

                loaded[key] = load_policy(key, device="cpu")
            local = {"model": loaded[key][0], "tokenizer": loaded[key][1]}
        writer = make_writer(spec, **local)
        for start in range(0, len(instructions), BATCH):
            batch = instructions[start : start + BATCH]
            outputs = writer.write([WritingTask(i.prompt, _required(i)) for i in batch])
            with fence():
                Reference.objects.bulk_create(
                    [
                        Reference(
                            instruction=instruction,
                            writer=spec.name[:200],
                            text=output.text,
                            source=Reference.Source.GENERATED,
                            metadata={
                                "writer": spec.to_dict(),
                                "plan": [vars(p) for p in output.plan] if output.plan else None,
                                "calls": output.calls,
                                # The outline could not be read: written in even sections.
                                **({"plan_fallback": True} if output.plan_fallback else {}),
                                **({"job": job_id} if job_id is not None else {}),
                            },
                            attempts=output.attempts,
                            prompt_tokens=output.usage.prompt_tokens,
                            completion_tokens=output.usage.completion_tokens,
                        )
                        for instruction, output in zip(batch, outputs, strict=True)
                        if output.text
                    ]
                )
                if job_id is not None:
                    # Failed generations were paid for too: the job's tally counts them.
                    job_usage_add(job_id, spec.endpoint, _spent(outputs))
            for output in outputs:
                fallbacks += bool(output.text and output.plan_fallback)
                if output.text:
                    written += 1
                else:
                    failed += 1
                    if len(errors) < 5:
                        errors.append(f"{spec.name}: {output.error}")
            done += len(batch)
            if progress and not progress(done / total, f"{spec.name}: {done}/{total} written"):
                return {
                    "written": written, "failed": failed, "errors": errors, "stopped": True,
                    **({"resumed": resumed} if resumed else {}),
                }  # fmt: skip
    result: dict[str, Any] = {"written": written, "failed": failed, "errors": errors}
    if fallbacks:
        result["plan_fallbacks"] = fallbacks  # flagged on each reference's metadata
    if resumed:
        result["resumed"] = resumed  # written before the worker was lost
    return result


def references_score(
    *, dataset: Dataset, scorer: dict[str, Any] | None = None, rescore: bool = False,
    progress: Progress | None = None, job_id: int | None = None, fence: Fence = _no_fence,
    instruction_ids: Sequence[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Grade references 1-10 (pointwise); a failed grade leaves the score empty.

    Unscored references only, unless ``rescore``; only those of ``instruction_ids`` when
    given. With ``job_id`` each grade records the job, so a rescoring job resumed after its
    worker was lost skips what it already graded.
    """
    grader = make_pointwise_scorer(scorer)
    references = Reference.objects.filter(instruction__dataset=dataset).select_related(
        "instruction"
    )
    if instruction_ids is not None:
        references = references.filter(instruction_id__in=list(instruction_ids))
    if not rescore:
        references = references.filter(score__isnull=True)
    elif job_id is not None:
        # (A plain exclude() would also drop references without the key: NULL in SQL.)
        references = references.filter(
            Q(metadata__score_job__isnull=True) | ~Q(metadata__score_job=job_id)
        )
    pending = list(references.order_by("id"))
    resumed = 0
    if job_id is not None:
        # Graded by an earlier attempt of this job (its worker was lost): counted as done.
        scope = Reference.objects.filter(instruction__dataset=dataset, metadata__score_job=job_id)
        if instruction_ids is not None:
            scope = scope.filter(instruction_id__in=list(instruction_ids))
        resumed = scope.exclude(score__isnull=True).exclude(pk__in=[r.pk for r in pending]).count()
    scored = failed = 0
    errors: list[str] = []
    for start in range(0, len(pending), BATCH * 4):
        batch = pending[start : start + BATCH * 4]
        grades = grader.score_many_sync(
            [(r.instruction.prompt, r.text, criteria_text(r.instruction.criteria)) for r in batch]
        )
        for reference, grade in zip(batch, grades, strict=True):
            if job_id is not None:
                reference.metadata = {**reference.metadata, "score_job": job_id}
            if grade.value is None:
                failed += 1
                reference.metadata = {**reference.metadata, "score_error": grade.error}
                if len(errors) < 5:
                    errors.append(f"reference {reference.pk}: {grade.error}")
            else:
                scored += 1
                reference.score = float(grade.value)
            reference.grade_attempts = grade.attempts
            reference.grade_prompt_tokens = grade.usage.prompt_tokens
            reference.grade_completion_tokens = grade.usage.completion_tokens
        with fence():
            Reference.objects.bulk_update(
                batch,
                ["score", "metadata", "grade_attempts", "grade_prompt_tokens",
                 "grade_completion_tokens"],
            )  # fmt: skip
            if job_id is not None:
                job_usage_add(job_id, _scorer_endpoint(scorer), _spent(grades))
        graded = start + len(batch)
        if progress and not progress(
            graded / len(pending),
            f"graded {graded}/{len(pending)}: {scored} scored, {failed} failed",
        ):
            break
    return {
        "scored": scored, "failed": failed, "errors": errors,
        "scorer": getattr(grader, "name", ""), **({"resumed": resumed} if resumed else {}),
    }  # fmt: skip


def policy_responses_generate(
    *, dataset: Dataset, policy: str, scorer: dict[str, Any] | None = None,
    max_new_tokens: int = 256, temperature: float = 0.7, params: dict[str, Any] | None = None,
    progress: Progress | None = None, model: Any = None, job_id: int | None = None,
    fence: Fence = _no_fence,
) -> dict[str, Any]:  # fmt: skip
    """Generate the policy's own response to each train instruction and grade it.

    With ``job_id`` each response records the job, and a resumed job skips the instructions
    *it* already answered (``resumed``) — never ones another job answered meanwhile."""
    params = {"split": Instruction.Split.TRAIN, **(params or {})}
    every_instruction = _instructions(dataset, params)
    instructions = every_instruction
    if job_id is not None:
        answered = set(
            PolicyResponse.objects.filter(
                instruction__dataset=dataset, policy=policy, job_id=job_id
            ).values_list("instruction_id", flat=True)
        )
        instructions = [i for i in every_instruction if i.pk not in answered]
    resumed = len(every_instruction) - len(instructions)
    # The policy (a local model, unless the caller passed it loaded: then ``policy`` is only
    # its label) and the scorer are checked before the first answer.
    spec = WriterSpec(name=policy, endpoint="local", model=policy, max_tokens=max_new_tokens,
                      temperature=temperature, seed=0)  # fmt: skip
    if model is None:
        spec = checked_writer(spec, "policy")
    grader = make_pointwise_scorer(scorer)
    writer = make_writer(spec, **({"model": model[0], "tokenizer": model[1]} if model else {}))
    made = graded = failed = 0
    errors: list[str] = []
    for start in range(0, len(instructions), BATCH):
        batch = instructions[start : start + BATCH]
        outputs = writer.write([WritingTask(i.prompt) for i in batch])
        texts = [output.text or "" for output in outputs]
        grades = grader.score_many_sync(
            [
                (i.prompt, text, criteria_text(i.criteria))
                for i, text in zip(batch, texts, strict=True)
            ]
        )
        with fence():
            PolicyResponse.objects.bulk_create(
                [
                    PolicyResponse(
                        instruction=instruction,
                        policy=policy,
                        text=text,
                        # An empty answer is a real (bad) answer for selection; a failed grade
                        # is None.
                        score=None if grade.value is None else float(grade.value),
                        job_id=job_id,
                        grade_attempts=grade.attempts,
                        grade_prompt_tokens=grade.usage.prompt_tokens,
                        grade_completion_tokens=grade.usage.completion_tokens,
                    )
                    for instruction, text, grade in zip(batch, texts, grades, strict=True)
                ]
            )
            if job_id is not None:
                job_usage_add(job_id, _scorer_endpoint(scorer), _spent(grades))
        made += len(batch)
        for instruction, grade in zip(batch, grades, strict=True):
            if grade.value is None:
                failed += 1
                if len(errors) < 5:
                    errors.append(f"instruction {instruction.pk}: {grade.error}")
            else:
                graded += 1
        total = max(len(every_instruction), 1)
        if progress and not progress(
            (resumed + made) / total, f"{resumed + made}/{len(every_instruction)} responses"
        ):
            break
    return {
        "responses": made, "graded": graded, "failed": failed, "errors": errors,
        **({"resumed": resumed} if resumed else {}),
    }  # fmt: skip


def job_execute(job: PipelineJob, lease: Lease | None = None) -> dict[str, Any]:
    """Run a claimed job's work with progress into its row; with ``lease`` every write is
    fenced (a worker that was taken over raises ``LeaseLost`` and stores nothing more)."""
    fence: Fence = lease.fenced if lease is not None else _no_fence

    def progress(fraction: float, message: str) -> bool:
        return job_progress(job.pk, fraction, message, lease=lease)

    params = dict(job.params)
    if job.kind == PipelineJob.Kind.GENERATE_REFERENCES:
        return references_generate(
            dataset=job.dataset, writers=params.pop("writers"), params=params, progress=progress,
            job_id=job.pk, fence=fence,
        )  # fmt: skip
    if job.kind == PipelineJob.Kind.SCORE_REFERENCES:
        return references_score(
            dataset=job.dataset, scorer=params.get("scorer"), rescore=bool(params.get("rescore")),
            progress=progress, job_id=job.pk, fence=fence,
            instruction_ids=params.get("instruction_ids"),
        )  # fmt: skip
    if job.kind == PipelineJob.Kind.POLICY_RESPONSES:
        return policy_responses_generate(
            dataset=job.dataset, policy=params["policy"], scorer=params.get("scorer"),
            max_new_tokens=int(params.get("max_new_tokens", 256)),
            temperature=float(params.get("temperature", 0.7)), progress=progress,
            job_id=job.pk, fence=fence,
            params={"instruction_ids": params["instruction_ids"]}
            if params.get("instruction_ids") else None,
        )  # fmt: skip
    if job.kind == PipelineJob.Kind.SELECT:
        # A resumed job reuses the Selection it made (recorded in its row, in the same
        # transaction as the selection itself).
        made = (job.result or {}).get("selection")
        selection = Selection.objects.filter(pk=made).first() if made else None
        if selection is None:
            try:
                with fence():
                    selection = selection_create(
                        dataset=job.dataset, strategy=params.get("strategy", "margin"),
                        k=params.get("k"), policy=params["policy"],
                        seed=int(params.get("seed", 0)), user=job.owner,
                        instruction_ids=params.get("instruction_ids"),
                    )  # fmt: skip
                    PipelineJob.objects.filter(pk=job.pk).update(result={"selection": selection.pk})
            except SelectionError as error:
                # Nothing to select from (e.g. unscored): said as such, not as a traceback.
                return {"selection": None, "chosen": 0, "error": str(error)}
        return {
            "selection": selection.pk,
            "chosen": selection.entries.filter(chosen=True).count(),
            "candidates": selection.entries.count(),
            "k": selection.k,
        }
    if job.kind == PipelineJob.Kind.ORDER_TIERS:
        with fence():
            return references_order(
                dataset=job.dataset, instruction_ids=params.get("instruction_ids")
            )
    raise ValueError(f"unknown job kind {job.kind!r}")


__all__ = [
    "dependents_release",
    "job_cancel",
    "job_claim",
    "job_create",
    "job_enqueue",
    "job_execute",
    "job_finish",
    "job_heartbeat",
    "job_progress",
    "jobs_recover_stale",
    "policy_responses_generate",
    "references_generate",
    "references_score",
]


def job_run(job_id: int, *, worker: str) -> dict[str, Any]:
    """What the pipeline task does: claim job ``job_id`` for ``worker`` (a re-delivered
    message for a claimed job does nothing) and run it.

    Every write is fenced by the claim's lease: a worker whose job was taken over stops at
    its next write (``LeaseLost``) and records nothing, not even how it ended."""
    lease = job_claim(job_id, worker=worker)
    if lease is None:
        return {"job": job_id, "claimed": False}
    job = PipelineJob.objects.select_related("dataset", "owner").get(pk=job_id)
    try:
        with lease.heartbeat():
            result = job_execute(job, lease)
    except LeaseLost as error:
        log.warning("pipeline job %s: %s; this worker stops", job_id, error)
        return {"job": job_id, "claimed": True, "status": "lease_lost"}
    except Exception as error:
        job_finish(
            job_id,
            status=PipelineJob.Status.FAILED,
            error=error_text(error),
            lease=lease,
        )
        log.exception("pipeline job %s failed", job_id)
        return {"job": job_id, "claimed": True, "status": "failed", "error": str(error)}
    stopped = (
        result.get("stopped")
        or PipelineJob.objects.filter(pk=job_id, cancel_requested=True).exists()
    )
    if stopped:
        finished = job_finish(
            job_id, status=PipelineJob.Status.CANCELLED, result=result, lease=lease
        )
        status = PipelineJob.Status.CANCELLED
    else:
        # Less than asked is "partial" or "failed", with the counts and the first error.
        outcome = job_outcome(job.kind, result)
        status = outcome.status
        finished = job_finish(
            job_id, status=status, result=result, lease=lease, error=outcome.error,
            message=outcome.message or None, progress=outcome.progress,
        )  # fmt: skip
    if not finished:
        return {"job": job_id, "claimed": True, "status": "lease_lost"}
    return {"job": job_id, "claimed": True, "status": status, "result": result}
