"""Per-sample reference progression within a run, and the staff-only interventions on it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from webapp.studio import selectors
from webapp.studio.forms import AddReferenceForm, SetTierForm
from webapp.studio.models import Instruction, Run
from webapp.studio.permissions import researcher_required
from webapp.studio.services.interventions import curriculum_set_tier, reference_add
from webapp.studio.views.common import int_param, paginate, query_without_page

DEFAULT_STUCK_STEPS = 20


@researcher_required
def sample_list(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("dataset"), pk=pk)
    show = request.GET.get("show", "all")
    if show not in selectors.SAMPLE_FILTERS:
        show = "all"
    stuck_steps = int_param(request, "n", DEFAULT_STUCK_STEPS, low=1)
    samples = selectors.progression_samples(run, show=show, stuck_steps=stuck_steps)
    page = paginate(request, samples)
    return render(
        request,
        "studio/sample_list.html",
        {
            "run": run,
            "page": page,
            "show": show,
            "filters": selectors.SAMPLE_FILTERS,
            "stuck_steps": stuck_steps,
            "query": query_without_page(request),
        },
    )


def _sample_context(run: Run, instruction: Instruction) -> dict[str, Any]:
    return {
        "run": run,
        "instruction": instruction,
        **selectors.sample_progression(run, instruction),
    }


@researcher_required
def sample_detail(request: HttpRequest, pk: int, instruction_pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("dataset"), pk=pk)
    instruction = get_object_or_404(Instruction, pk=instruction_pk, dataset_id=run.dataset_id)
    context = _sample_context(run, instruction)
    context["tier_form"] = SetTierForm()
    context["reference_form"] = AddReferenceForm()
    return render(request, "studio/sample_detail.html", context)


def _rerender(
    request: HttpRequest, run: Run, instruction: Instruction, **forms: Any
) -> HttpResponse:
    context = _sample_context(run, instruction)
    context.setdefault("tier_form", SetTierForm())
    context.setdefault("reference_form", AddReferenceForm())
    context.update(forms)
    return render(request, "studio/sample_detail.html", context, status=400)


@researcher_required
@require_POST
def sample_set_tier(request: HttpRequest, pk: int, instruction_pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    instruction = get_object_or_404(Instruction, pk=instruction_pk, dataset_id=run.dataset_id)
    form = SetTierForm(request.POST)
    if form.is_valid():
        try:
            state = curriculum_set_tier(
                run=run,
                instruction=instruction,
                tier=form.cleaned_data["tier"],
                user=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request, f"Sample {instruction.external_id} is now at tier {state.tier}."
            )
            return redirect("studio:sample_detail", pk=run.pk, instruction_pk=instruction.pk)
    return _rerender(request, run, instruction, tier_form=form)


@researcher_required
@require_POST
def sample_add_reference(request: HttpRequest, pk: int, instruction_pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    instruction = get_object_or_404(Instruction, pk=instruction_pk, dataset_id=run.dataset_id)
    form = AddReferenceForm(request.POST)
    if form.is_valid():
        try:
            reference = reference_add(
                instruction=instruction,
                text=form.cleaned_data["text"],
                writer=form.cleaned_data["writer"],
                user=request.user,
                run=run,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request, f"Added a tier-{reference.tier} reference by {reference.writer}."
            )
            return redirect("studio:sample_detail", pk=run.pk, instruction_pk=instruction.pk)
    return _rerender(request, run, instruction, reference_form=form)


def _add_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)
