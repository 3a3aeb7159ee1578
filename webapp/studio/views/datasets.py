"""Datasets: the list, the upload form, a dataset's instructions and references, selections,
and the pipeline jobs that prepare them (write, grade, answer with the policy, order tiers)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from webapp.studio import selectors
from webapp.studio.forms import (
    PIPELINE_FORMS,
    DatasetUploadForm,
    PrepareReferencesForm,
    SelectionForm,
)
from webapp.studio.models import Dataset, Instruction, PipelineJob, Selection
from webapp.studio.permissions import researcher_required
from webapp.studio.services.datasets import DatasetImportError, dataset_import
from webapp.studio.services.pipeline import job_cancel as job_cancel_service
from webapp.studio.services.pipeline import job_create, job_retry_blocked
from webapp.studio.services.pipeline import job_retry as job_retry_service
from webapp.studio.services.prepare import PrepareError
from webapp.studio.services.prepare import references_prepare as references_prepare_service
from webapp.studio.services.selection import SelectionError, selection_create
from webapp.studio.views.common import paginate, query_without_page
from webapp.studio.views.judge_checks import judge_check_form

INSTRUCTIONS_PER_PAGE = 20


@researcher_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    page = paginate(request, selectors.dataset_list())
    return render(request, "studio/dataset_list.html", {"page": page})


@researcher_required
def dataset_upload(request: HttpRequest) -> HttpResponse:
    """Import an uploaded file; on any problem, list them all (line, field) and import nothing."""
    failure: DatasetImportError | None = None
    if request.method == "POST":
        form = DatasetUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                dataset = dataset_import(
                    name=form.cleaned_data["name"],
                    uploaded_file=form.cleaned_data["file"],
                    fmt=form.cleaned_data["format"],
                    description=form.cleaned_data["description"],
                    user=request.user,
                    split=form.cleaned_data.get("split") or "train",
                    eval_fraction=form.cleaned_data.get("eval_fraction") or None,
                    seed=form.cleaned_data.get("seed") or 0,
                )
            except DatasetImportError as exc:
                failure = exc
            else:
                messages.success(
                    request,
                    f"Imported dataset {dataset.name!r} ({dataset.instructions.count()} "
                    "instructions).",
                )
                return redirect("studio:dataset_detail", pk=dataset.pk)
    else:
        form = DatasetUploadForm()
    return render(
        request,
        "studio/dataset_upload.html",
        {"form": form, "failure": failure},
        status=400 if failure or form.errors else 200,
    )


@researcher_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    if request.htmx:
        # The jobs panel polls itself while a job is queued or running.
        jobs = selectors.dataset_job_rows(dataset)
        active = selectors.jobs_active(jobs)
        context = {"dataset": dataset, "jobs": jobs, "jobs_active": active}
        response = render(request, "studio/dataset_detail.html#jobs", context)
        if not active:
            response.status_code = HTMX_STOP_POLLING
        patch_vary_headers(response, ("HX-Request",))
        return response
    return _dataset_page(
        request, dataset, SelectionForm(initial={"policy": settings.WRITING_RL_POLICY})
    )


def _job_form_ids(kind: str) -> str:
    """Element ids per form: the page holds several forms with the same field names."""
    return f"id_{kind}_%s"


def _job_forms(bound: forms.Form | None = None) -> dict[str, forms.Form]:
    """One form per pipeline job kind, ``bound`` in place of its kind's fresh form."""
    initial: dict[str, dict[str, Any]] = {
        "policy_responses": {"policy": settings.WRITING_RL_POLICY}
    }
    made = {
        kind: form(initial=initial.get(kind), auto_id=_job_form_ids(kind))
        for kind, form in PIPELINE_FORMS.items()
    }
    if bound is not None:
        made[bound.kind] = bound  # type: ignore[attr-defined]
    return made


def _dataset_page(
    request: HttpRequest,
    dataset: Dataset,
    selection_form: SelectionForm,
    status: int = 200,
    job_form: forms.Form | None = None,
    prepare_form: PrepareReferencesForm | None = None,
) -> HttpResponse:
    search = request.GET.get("q", "").strip()[:200]
    split = request.GET.get("split", "")
    if split not in Instruction.Split.values:
        split = ""
    instructions = selectors.dataset_instructions(dataset, search=search, split=split)
    paginator = Paginator(instructions, INSTRUCTIONS_PER_PAGE)
    target = request.GET.get("instruction", "")
    if target.isdigit() and len(target) <= 12 and "page" not in request.GET:
        # A link to one instruction (#instruction-<pk>) opens the page that holds it.
        before = instructions.filter(pk__lt=int(target)).count()
        page = paginator.get_page(before // INSTRUCTIONS_PER_PAGE + 1)
    else:
        page = paginator.get_page(request.GET.get("page"))
    jobs = selectors.dataset_job_rows(dataset)
    return render(
        request,
        "studio/dataset_detail.html",
        {
            "dataset": dataset,
            "page": page,
            "selections": list(selectors.dataset_selections(dataset)[:20]),
            "runs": list(selectors.dataset_runs(dataset)[:20]),
            "jobs": jobs,
            "jobs_active": selectors.jobs_active(jobs),
            "job_forms": _job_forms(job_form),
            "prepare_form": prepare_form or _prepare_form(),
            "prepare_form_open": prepare_form is not None,
            "job_form_open": getattr(job_form, "kind", ""),
            "selection_form": selection_form,
            "judge_check_form": judge_check_form(),
            "judge_checks": list(dataset.judge_checks.all()[:5]),
            "query": query_without_page(request),
            "search": search,
            "split": split,
            "splits": Instruction.Split.values,
        },
        status=status,
    )


@researcher_required
@require_POST
def job_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a pipeline job on the dataset (its task runs on the queue its kind needs)."""
    dataset = get_object_or_404(Dataset, pk=pk)
    form_class = PIPELINE_FORMS.get(request.POST.get("kind", ""))
    if form_class is None:
        raise Http404("No such pipeline job kind.")
    form = form_class(request.POST, auto_id=_job_form_ids(form_class.kind))  # type: ignore[attr-defined]
    if form.is_valid():
        job = job_create(
            kind=form.kind,  # type: ignore[attr-defined]
            dataset=dataset,
            params=form.params(),  # type: ignore[attr-defined]
            user=request.user,
        )
        messages.success(request, f"{job.get_kind_display().capitalize()} queued (job #{job.pk}).")
        return redirect(reverse("studio:dataset_detail", args=[dataset.pk]) + "#jobs")
    selection_form = SelectionForm(initial={"policy": settings.WRITING_RL_POLICY})
    return _dataset_page(request, dataset, selection_form, status=400, job_form=form)


def _prepare_form(data: Any = None) -> PrepareReferencesForm:
    return PrepareReferencesForm(
        data, initial={"policy": settings.WRITING_RL_POLICY}, auto_id="id_prepare_%s"
    )


@researcher_required
@require_POST
def references_prepare(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue the "prepare references" chain (write → grade → order tiers, optionally →
    select) on the dataset's first N instructions; bad input queues nothing."""
    dataset = get_object_or_404(Dataset, pk=pk)
    form = _prepare_form(request.POST)
    if form.is_valid():
        try:
            jobs = references_prepare_service(
                dataset=dataset, user=request.user, **form.prepare_kwargs()
            )
        except PrepareError as error:
            form.add_error(None, str(error))
        else:
            numbers = ", ".join(f"#{job.pk}" for job in jobs)
            messages.success(
                request, f"{jobs[0].group_label} — {len(jobs)} chained jobs queued ({numbers})."
            )
            return redirect(reverse("studio:dataset_detail", args=[dataset.pk]) + "#jobs")
    selection_form = SelectionForm(initial={"policy": settings.WRITING_RL_POLICY})
    return _dataset_page(request, dataset, selection_form, status=400, prepare_form=form)


@researcher_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(PipelineJob, pk=pk)
    if job.status in ("waiting", "queued", "running"):
        job_cancel_service(job=job)
        messages.success(request, f"Cancellation of job #{job.pk} requested.")
    return redirect(reverse("studio:dataset_detail", args=[job.dataset_id]) + "#jobs")


@researcher_required
@require_POST
def job_retry(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(PipelineJob, pk=pk)
    blocked = job_retry_blocked(job)
    if blocked:
        messages.error(request, f"Not retried: {blocked}.")
    elif job_retry_service(job=job, user=request.user):
        messages.success(request, f"Job #{job.pk} queued again; it keeps what it had done.")
    else:
        messages.info(request, f"Job #{job.pk} is {job.status}; only a failed job is retried.")
    return redirect(reverse("studio:dataset_detail", args=[job.dataset_id]) + "#jobs")


@researcher_required
@require_POST
def selection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Run a selection pass over the dataset now (it reads scores already in the database)."""
    dataset = get_object_or_404(Dataset, pk=pk)
    form = SelectionForm(request.POST)
    if form.is_valid():
        try:
            selection = selection_create(
                dataset=dataset,
                strategy=form.cleaned_data["strategy"],
                k=form.cleaned_data["k"],
                policy=form.cleaned_data["policy"],
                seed=form.cleaned_data["seed"],
                user=request.user,
            )
        except SelectionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Selection #{selection.pk} done.")
            return redirect("studio:selection_detail", pk=selection.pk)
    return _dataset_page(request, dataset, form, status=400)


@researcher_required
def selection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    selection = get_object_or_404(Selection.objects.select_related("dataset", "created_by"), pk=pk)
    chosen_only = request.GET.get("show") == "chosen"
    page = paginate(request, selectors.selection_entries(selection, chosen_only=chosen_only))
    return render(
        request,
        "studio/selection_detail.html",
        {
            "selection": selection,
            "summary": selectors.selection_summary(selection),
            "page": page,
            "chosen_only": chosen_only,
            "query": query_without_page(request),
        },
    )
