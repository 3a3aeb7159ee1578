"""Studio pages for researchers: datasets, selections, runs and the reference progression."""

from webapp.studio.views.datasets import (
    dataset_detail,
    dataset_list,
    dataset_upload,
    job_cancel,
    job_new,
    job_retry,
    references_prepare,
    selection_detail,
    selection_new,
)
from webapp.studio.views.judge_checks import judge_check_detail, judge_check_new
from webapp.studio.views.progression import (
    sample_add_reference,
    sample_detail,
    sample_list,
    sample_set_tier,
)
from webapp.studio.views.run_compare import run_compare
from webapp.studio.views.run_log import run_log
from webapp.studio.views.run_metrics import run_metrics_csv, run_metrics_json
from webapp.studio.views.runs import (
    dashboard,
    run_cancel,
    run_detail,
    run_list,
    run_new,
    run_new_estimate,
    run_new_selections,
    run_resume,
)

__all__ = [
    "dashboard",
    "dataset_detail",
    "dataset_list",
    "dataset_upload",
    "job_cancel",
    "job_new",
    "job_retry",
    "judge_check_detail",
    "judge_check_new",
    "references_prepare",
    "run_cancel",
    "run_compare",
    "run_detail",
    "run_list",
    "run_log",
    "run_metrics_csv",
    "run_metrics_json",
    "run_new",
    "run_new_estimate",
    "run_new_selections",
    "run_resume",
    "sample_add_reference",
    "sample_detail",
    "sample_list",
    "sample_set_tier",
    "selection_detail",
    "selection_new",
]
