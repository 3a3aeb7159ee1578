"""Pipeline tasks: each runs one ``PipelineJob`` (generate references, score them, the
policy's responses, select, order tiers), with its progress in the job's row."""

from __future__ import annotations

import logging
import traceback
from typing import Any

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(
    name="workers.tasks.pipeline.run_pipeline_job",
    acks_late=True,
    reject_on_worker_lost=True,
)
def run_pipeline_job(job_id: int) -> dict[str, Any]:
    """Claim job ``job_id`` (a re-delivered message for a claimed job does nothing) and run it."""
    from webapp.studio.models import PipelineJob
    from webapp.studio.services.pipeline import job_claim, job_execute, job_finish

    if not job_claim(job_id):
        return {"job": job_id, "claimed": False}
    job = PipelineJob.objects.select_related("dataset", "owner").get(pk=job_id)
    try:
        result = job_execute(job)
    except Exception as error:
        job_finish(
            job_id,
            status=PipelineJob.Status.FAILED,
            error="".join(traceback.format_exception(error)[-6:])[-4000:],
        )
        log.exception("pipeline job %s failed", job_id)
        return {"job": job_id, "claimed": True, "status": "failed", "error": str(error)}
    stopped = (
        result.get("stopped")
        or PipelineJob.objects.filter(pk=job_id, cancel_requested=True).exists()
    )
    status = PipelineJob.Status.CANCELLED if stopped else PipelineJob.Status.SUCCEEDED
    job_finish(job_id, status=status, result=result)
    return {"job": job_id, "claimed": True, "status": status, "result": result}
