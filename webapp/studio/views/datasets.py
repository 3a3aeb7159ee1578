"""Datasets: the list, the upload form, a dataset's instructions and references, selections."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.studio import selectors
from webapp.studio.forms import DatasetUploadForm, SelectionForm
from webapp.studio.models import Dataset, Selection
from webapp.studio.permissions import researcher_required
from webapp.studio.services.datasets import DatasetImportError, dataset_import
from webapp.studio.services.selection import SelectionError, selection_create
from webapp.studio.views.common import paginate, query_without_page


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
    return _dataset_page(
        request, dataset, SelectionForm(initial={"policy": settings.WRITING_RL_POLICY})
    )


def _dataset_page(
    request: HttpRequest, dataset: Dataset, selection_form: SelectionForm, status: int = 200
) -> HttpResponse:
    page = paginate(request, selectors.dataset_instructions(dataset), per_page=20)
    return render(
        request,
        "studio/dataset_detail.html",
        {
            "dataset": dataset,
            "page": page,
            "selections": list(selectors.dataset_selections(dataset)[:20]),
            "runs": list(selectors.dataset_runs(dataset)[:20]),
            "jobs": list(selectors.dataset_jobs(dataset)[:10]),
            "selection_form": selection_form,
            "query": query_without_page(request),
        },
        status=status,
    )


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
