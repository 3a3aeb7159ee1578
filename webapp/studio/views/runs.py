"""The dashboard, the run list, the new-run form and the run page with its live progress."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.cache import patch_vary_headers
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_POST
from django_htmx.http import HTMX_STOP_POLLING

from rl_engine.judging.check import JudgeCheckThresholds
from webapp.charts import SMOOTHING_CHOICES
from webapp.studio import selectors
from webapp.studio.forms import RunForm, initial_from_data, run_clone_initial
from webapp.studio.learning_signal import learning_signal, learning_signal_charts
from webapp.studio.models import JudgeCheck, Run
from webapp.studio.permissions import researcher_required
from webapp.studio.run_page import ChartSettings, checkpoint_rows, config_sections
from webapp.studio.run_presets import PRESETS
from webapp.studio.services.judge_check import DEFAULT_PAIRS, JudgeCheckError, judge_check_run
from webapp.studio.services.runs import RunConfigError, run_create
from webapp.studio.services.runs import run_cancel as run_cancel_service
from webapp.studio.services.runs import run_resume as run_resume_service
from webapp.studio.views.common import paginate, query_without_page
from webapp.studio.views.judge_checks import MAX_UI_PAIRS

# htmx stops polling an element whose response has this status, 286 (and still swaps it in).
STOP_POLLING = HTMX_STOP_POLLING
CHARTS_CACHE_S = 600


@researcher_required
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "studio/dashboard.html", selectors.dashboard_summary())


@researcher_required
def run_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in Run.Status.values:
        status = None
    page = paginate(request, selectors.run_list(status=status))
    return render(
        request,
        "studio/run_list.html",
        {
            "page": page,
            "status": status,
            "statuses": Run.Status.values,
            "query": query_without_page(request),
        },
    )


@researcher_required
def run_new(request: HttpRequest) -> HttpResponse:
    """The new-run form. POST with ``apply_preset`` or ``apply_clone`` fills the form (from a
    preset, or from a run's config) and launches nothing; the form's other values are kept."""
    filling = {"apply_preset", "apply_clone"} & set(request.POST)
    if request.method == "POST" and filling:
        return _render_new(request, *_filled(request, request.POST))
    if request.method == "POST":
        form = RunForm(request.POST)
        if form.is_valid() and "check_judge" in request.POST:
            # "Check this judge": the check only, with the form's judge and thresholds.
            check = _check_form_judge(request, form)
            return _render_new(request, form, check=check, status=200 if check else 400)
        if form.is_valid():
            try:
                run = run_create(
                    name=form.cleaned_data["name"],
                    dataset=form.cleaned_data["dataset"],
                    selection=form.cleaned_data["selection"],
                    config=form.cleaned_data["config"],
                    owner=request.user,
                )
            except RunConfigError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Run {run.name!r} is queued.")
                return redirect("studio:run_detail", pk=run.pk)
        return _render_new(request, form, status=400 if form.errors else 200)
    return _render_new(request, *_filled(request, request.GET))


def _filled(request: HttpRequest, data: QueryDict) -> tuple[RunForm, str]:
    """A fresh form holding what ``data`` holds (a posted form, or ``?dataset=&selection=``),
    with the run to copy (``clone``) or the preset (``preset``) on top; and a note saying
    what was filled in."""
    initial: dict[str, Any] = {}
    note = ""
    if request.method == "POST":
        initial = initial_from_data(RunForm(), data)
    else:
        for name in ("name", "dataset", "selection"):
            if data.get(name):
                initial[name] = data[name]
    clone_id = str(data.get("clone") or "")
    if clone_id and (request.method == "GET" or "apply_clone" in data):
        run = selectors.clonable_runs(request.user).filter(pk=_int(clone_id)).first()
        if run is None:
            note = f"There is no run {clone_id} to copy; nothing was filled in."
        else:
            initial.update(run_clone_initial(run))
            note = (
                f"Every setting is filled in from run {run.pk} ({run.name}); change what you "
                "like and launch."
            )
    preset = PRESETS.get(str(data.get("preset") or ""))
    if preset is not None and (request.method == "GET" or "apply_preset" in data):
        initial.update(preset.values)
        initial["preset"] = preset.key
        note = f"The training settings of the preset {preset.label!r} are filled in."
    return RunForm(initial=initial), note


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _render_new(
    request: HttpRequest,
    form: RunForm,
    note: str = "",
    *,
    check: JudgeCheck | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "note": note,
        "check": check,
        "presets": list(PRESETS.values()),
        "chosen_preset": PRESETS.get(str(form["preset"].value() or "")),
        "clonable": selectors.clonable_runs(request.user)[:50],
        "policy_models": selectors.policy_suggestions(),
        "estimate": _estimate(form),
    }
    return render(request, "studio/run_new.html", context, status=status)


def _estimate(form: RunForm) -> dict[str, Any]:
    """The run's time from this instance's measured step times, for the form's values."""
    values = {name: form[name].value() for name in ESTIMATE_FIELDS}
    return _estimate_for(values)


ESTIMATE_FIELDS = (
    "policy", "num_generations", "prompts_per_step", "max_completion_tokens", "max_steps",
)  # fmt: skip


def _estimate_for(values: Mapping[str, Any]) -> dict[str, Any]:
    policy = str(values.get("policy") or "").strip()
    sizes: dict[str, int] = {}
    for name in ESTIMATE_FIELDS[1:]:
        try:
            sizes[name] = int(str(values.get(name) or ""))
        except ValueError:
            return {"missing": True}
        if not 0 < sizes[name] <= 10_000_000:
            return {"missing": True}
    estimate = selectors.step_time_estimate(policy=policy, **sizes)
    total = estimate["total_s"]
    return {
        **estimate,
        **sizes,
        "policy": policy,
        "total_text": duration_text(total) if total is not None else "",
    }


def duration_text(seconds: float) -> str:
    """``42`` -> "42 s", ``600`` -> "10 min", ``5400`` -> "1 h 30 min", days beyond 48 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds / 86400:.1f} days"


@researcher_required
def run_new_estimate(request: HttpRequest) -> HttpResponse:
    """The estimate fragment the form refreshes (htmx) when a rollout size changes."""
    return render(
        request,
        "studio/run_new.html#estimate",
        {"estimate": _estimate_for({name: request.GET.get(name) for name in ESTIMATE_FIELDS})},
    )


@researcher_required
def run_new_selections(request: HttpRequest) -> HttpResponse:
    """The selection field for the chosen dataset (htmx swaps it when the dataset changes)."""
    form = RunForm(initial={"dataset": request.GET.get("dataset") or None, "selection": None})
    return render(request, "studio/run_new.html#selection", {"form": form})


def _check_form_judge(request: HttpRequest, form: RunForm) -> JudgeCheck | None:
    config = form.cleaned_data["config"]
    thresholds = JudgeCheckThresholds(
        config.judge_check_min_parse_rate, config.judge_check_min_consistency
    )
    try:
        return judge_check_run(
            dataset=form.cleaned_data["dataset"],
            spec=config.judge,
            n=min(config.judge_check_pairs or DEFAULT_PAIRS, MAX_UI_PAIRS),
            seed=config.seed,
            thresholds=thresholds,
            owner=request.user,
        )
    except JudgeCheckError as error:
        form.add_error("dataset", str(error))
        return None


@researcher_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        run = selectors.run_detail(pk)
    except Run.DoesNotExist:
        raise Http404("No such run.") from None
    chart_settings = ChartSettings.from_query(request.GET)
    context = {
        "run": run,
        "charts_html": _charts_html(run, chart_settings),
        "curriculum": selectors.run_curriculum_summary(run),
        "judging": _judging(run),
        "chart_settings": chart_settings,
        "smoothing_choices": SMOOTHING_CHOICES,
    }
    if request.htmx:
        response = render(request, "studio/run_detail.html#progress", context)
        if not run.is_active:
            response.status_code = STOP_POLLING
    else:
        context["audit"] = selectors.run_recent_audit(run)
        context["config_sections"] = config_sections(run.config or {})
        context["checkpoints"] = checkpoint_rows(run)
        context["judge_checks"] = list(run.judge_checks.all()[:3])
        response = render(request, "studio/run_detail.html", context)
    # The same URL answers with a fragment or a page: caches must tell them apart.
    patch_vary_headers(response, ("HX-Request",))
    return response


def _judging(run: Run) -> dict[str, Any]:
    """The judge's totals, read once per (status, step) like the charts: judgments and step
    metrics are written once per step."""
    key = f"studio:run-judging:{run.pk}:{run.status}:{run.current_step}"
    summary = cache.get(key)
    if summary is None:
        summary = selectors.run_judging_summary(run)
        cache.set(key, summary, CHARTS_CACHE_S)
    return summary


def _charts_html(run: Run, settings: ChartSettings) -> SafeString:
    """The run's charts, rendered once per (status, step, chart settings): every poll of every
    open page would otherwise re-read the step metrics and redraw the same SVG."""
    key = (
        f"studio:run-charts:{run.pk}:{run.status}:{run.current_step}:{run.total_steps}"
        f":{settings.key}"
    )
    html = cache.get(key)
    if html is None:
        signal = learning_signal_charts(learning_signal(run))
        html = render_to_string(
            "studio/_run_charts.html",
            {
                "charts": selectors.run_charts(run),
                "signal": signal,
                "smoothing": settings.smoothing,
                "x_range": settings.x_range,
            },
        )
        cache.set(key, html, CHARTS_CACHE_S)
    # Rendered by the template engine above, so already escaped.
    return mark_safe(html)


@researcher_required
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    if run.is_active:
        run_cancel_service(run=run, user=request.user)
        messages.success(request, f"Cancellation of {run.name!r} requested.")
    else:
        messages.info(request, f"Run {run.name!r} already ended ({run.status}).")
    return redirect("studio:run_detail", pk=run.pk)


@researcher_required
@require_POST
def run_resume(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    if run.status in (Run.Status.FAILED, Run.Status.CANCELLED):
        run_resume_service(run=run, user=request.user)
        messages.success(
            request, f"{run.name!r} queued again; it resumes from its last checkpoint."
        )
    else:
        messages.info(request, f"Run {run.name!r} is {run.status}; only an ended run is resumed.")
    return redirect("studio:run_detail", pk=run.pk)
