"""Pipeline tasks: each runs one ``PipelineJob`` (generate references, score them, the
policy's responses, select, order tiers), with its progress in the job's row.

Like training: ``acks_late``, a claim through the database (a re-delivered message for a job
held by a live worker does nothing), a heartbeat while it works, and a job whose worker was
lost is claimed again and resumes where that worker stopped."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from celery import shared_task

from workers.tasks.heartbeat import worker_name

log = logging.getLogger(__name__)


@shared_task(
    name="workers.tasks.pipeline.run_pipeline_job",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_pipeline_job(self: Any, job_id: int) -> dict[str, Any]:
    """Claim job ``job_id`` (a re-delivered message for a claimed job does nothing) and run it.

    Every write is fenced by the claim's lease: a worker whose job was taken over stops at
    its next write (``LeaseLost``) and records nothing, not even how it ended."""
    from webapp.studio.models import PipelineJob
    from webapp.studio.services.job_outcome import job_outcome
    from webapp.studio.services.leases import LeaseLost
    from webapp.studio.services.pipeline import job_claim, job_execute, job_finish

    worker = worker_name(self.request.id)
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
            error="".join(traceback.format_exception(error)[-6:])[-4000:],
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
