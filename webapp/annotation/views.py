"""Annotation pages. Annotators: the queue, an assignment, the vote. Researchers: campaigns,
results, judge runs and exports. Views stay thin: services write, selectors read."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from rl_engine.text import count_words
from webapp.annotation import exports, results, selectors
from webapp.annotation.forms import (
    VOTE_CHOICES,
    CampaignForm,
    JudgeRunForm,
    PreferenceExportForm,
    VoteForm,
)
from webapp.annotation.markup import render_markdown
from webapp.annotation.models import Assignment, Campaign, JudgeRun
from webapp.annotation.services.assignments import assignment_claim_next, assignment_renew
from webapp.annotation.services.campaigns import campaign_create, campaign_missing_outputs
from webapp.annotation.services.job_kinds import campaign_retry as campaign_retry_service
from webapp.annotation.services.job_kinds import judge_run_retry as judge_run_retry_service
from webapp.annotation.services.judge_runs import judge_run_create
from webapp.annotation.services.votes import vote_and_claim_next, vote_undo_last
from webapp.studio.permissions import is_researcher, researcher_required

ITEM_PARTIAL = "annotation/annotate.html#item"
# (value, label, key): the radios are written out in the template (cheaper than widgets).
CHOICE_KEYS = [
    (value, label, key) for (value, label), key in zip(VOTE_CHOICES, "1234s", strict=True)
]


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    """The annotator's campaigns with both progress bars; researchers also see every campaign."""
    mine = [
        {
            "campaign": campaign,
            "mine": selectors.annotator_progress(campaign, request.user),
            "overall": selectors.campaign_progress(campaign),
        }
        for campaign in selectors.campaigns_for_annotator(request.user)
    ]
    context: dict[str, Any] = {"mine": mine}
    if is_researcher(request.user):
        context["all_campaigns"] = selectors.campaigns_overview()
    return render(request, "annotation/queue.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def work(request: HttpRequest, pk: int) -> HttpResponse:
    """POST: lease the next item of a campaign (or resume the current one) and open it.

    A GET only shows the campaign's Start button: a link preview, a prefetch or a crawler must
    not take an item away from the other annotators.
    """
    campaign = selectors.campaign_for_annotator(request.user, pk)
    title = campaign.annotator_title
    if campaign.status != Campaign.Status.OPEN:
        messages.info(request, f"“{title}” is {campaign.get_status_display()}.")
        return redirect("annotation:queue")
    if request.method != "POST":
        mine, overall = selectors.progress_pair(campaign, request.user)
        return render(
            request,
            "annotation/start.html",
            {"campaign": campaign, "mine": mine, "overall": overall},
        )
    assignment = assignment_claim_next(campaign=campaign, annotator=request.user)
    if assignment is None:
        messages.success(request, f"Nothing left for you in “{title}”. Thank you!")
        return redirect("annotation:queue")
    return redirect("annotation:assignment", pk=assignment.pk)


def _item_context(request: HttpRequest, assignment: Assignment | None, campaign: Campaign) -> dict:
    mine, overall = selectors.progress_pair(campaign, request.user)
    context: dict[str, Any] = {
        "campaign": campaign,
        "assignment": assignment,
        "mine": mine,
        "overall": overall,
    }
    if assignment is None:
        return context
    item = assignment.item
    sides = [item.output_a.text, item.output_b.text]
    if not assignment.a_on_left:
        sides.reverse()
    context.update(
        item=item,
        left_text=sides[0],
        right_text=sides[1],
        left_words=count_words(sides[0]),
        right_words=count_words(sides[1]),
        finished=assignment.status != Assignment.Status.LEASED,
        form=VoteForm(),
        choices=CHOICE_KEYS,
    )
    return context


@login_required
def assignment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = selectors.assignment_for(request.user, pk)
    campaign = assignment.item.campaign
    if assignment.status == Assignment.Status.LEASED:
        assignment_renew(assignment=assignment)
    context = _item_context(request, assignment, campaign)
    context["guidelines_html"] = render_markdown(campaign.guidelines)
    # The guidelines start open until the annotator's first vote in the campaign.
    context["guidelines_open"] = context["mine"].done == 0
    return render(request, "annotation/annotate.html", context)


@login_required
@require_POST
def vote_undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Take back the annotator's last vote in the campaign and show that item again."""
    campaign = selectors.campaign_for_annotator(request.user, pk)
    try:
        assignment = vote_undo_last(campaign=campaign, annotator=request.user)
    except ValidationError as exc:
        message = " ".join(exc.messages)
        if not request.htmx:
            messages.error(request, message)
            return redirect("annotation:work", pk=campaign.pk)
        response = HttpResponse(message, status=409, content_type="text/plain; charset=utf-8")
        return response
    if not request.htmx:
        messages.info(request, "Your last vote was taken back; vote again.")
        return redirect("annotation:assignment", pk=assignment.pk)
    assignment = selectors.assignment_for(request.user, assignment.pk)
    context = _item_context(request, assignment, campaign)
    context["notice"] = "Your last vote was taken back; vote again."
    response = render(request, ITEM_PARTIAL, context)
    response["HX-Push-Url"] = reverse("annotation:assignment", args=[assignment.pk])
    return response


@login_required
@require_POST
def vote(request: HttpRequest, pk: int) -> HttpResponse:
    """Record a vote, then hand out the next item: the item area for htmx, a redirect else.

    A repeated submit of the same vote is answered exactly like the first one.
    """
    assignment = selectors.assignment_for(request.user, pk, texts=False)
    campaign = assignment.item.campaign
    form = VoteForm(request.POST)
    if not form.is_valid():
        context = _item_context(request, assignment, campaign)
        context["form"] = form
        if request.htmx:
            return render(request, ITEM_PARTIAL, context)
        context["guidelines_html"] = render_markdown(campaign.guidelines)
        return render(request, "annotation/annotate.html", context, status=400)
    try:
        notice, following = vote_and_claim_next(
            assignment=assignment,
            annotator=request.user,
            choice=form.cleaned_data["choice"],
            rationale=form.cleaned_data["rationale"],
            skip_reason=form.cleaned_data["skip_reason"],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        context = _item_context(request, assignment, campaign)
        context["form"] = form
        return render(
            request, ITEM_PARTIAL if request.htmx else "annotation/annotate.html", context
        )
    if not request.htmx:
        if notice:
            messages.warning(request, notice)
        if following is None:
            messages.success(
                request, f"Nothing left for you in “{campaign.annotator_title}”. Thank you!"
            )
            return redirect("annotation:queue")
        return redirect("annotation:assignment", pk=following.pk)
    context = _item_context(request, following, campaign)
    context["notice"] = notice
    context["can_undo"] = not notice  # the vote just recorded can be taken back
    response = render(request, ITEM_PARTIAL, context)
    response["HX-Push-Url"] = (
        reverse("annotation:assignment", args=[following.pk])
        if following is not None
        else reverse("annotation:queue")
    )
    return response


# -- Researchers ----------------------------------------------------------------------------------


def add_service_error(form: Any, error: ValidationError) -> None:
    """A service's ValidationError on the form: on the field it names when the form has one,
    else at the top naming it (``systems: ...``), never Django's "has no field named" crash."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        else:
            form.add_error(None, [f"{field}: {message}" for message in errors])


@researcher_required
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            campaign = campaign_create(
                name=data["name"],
                instructions=data["instruction_list"],
                systems=data["system_specs"],
                annotators=data["annotators"],
                overlap=data["overlap"],
                guidelines=data["guidelines"],
                lease_seconds=data["lease_minutes"] * 60,
                max_new_tokens=data["max_new_tokens"],
                created_by=request.user,
            )
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            if data.get("public_title"):
                campaign.public_title = data["public_title"]
                campaign.save(update_fields=["public_title"])
            messages.success(request, f"Campaign “{campaign.name}” created.")
            return redirect("annotation:campaign", pk=campaign.pk)
    return render(
        request, "annotation/campaign_new.html", {"form": form}, status=400 if form.errors else 200
    )


@researcher_required
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    context = {
        "campaign": campaign,
        "systems": campaign.systems.all(),
        "annotators": campaign.annotators.order_by("username"),
        "overall": selectors.campaign_progress(campaign),
        "item_count": campaign.items.count(),
        "missing": {s.label: len(v) for s, v in campaign_missing_outputs(campaign).items()},
        "guidelines_html": render_markdown(campaign.guidelines),
    }
    return render(request, "annotation/campaign_detail.html", context)


@researcher_required
def campaign_results(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    found = results.campaign_results(campaign, bootstrap=200, seed=0)
    context = {
        "campaign": campaign,
        "overall": selectors.campaign_progress(campaign),
        "pairs": found.pairs,
        "ratings": found.ratings,
        "agreement": found.agreement,
        "judges": found.judges,
        "judge_tokens": found.judge_tokens,
        "judge_form": JudgeRunForm(),
        "quality": found.quality,
        "preference_form": PreferenceExportForm(),
    }
    return render(request, "annotation/results.html", context)


@researcher_required
@require_POST
def campaign_retry(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    if campaign_retry_service(campaign=campaign, user=request.user):
        messages.success(request, "Generation queued again; it keeps the outputs it stored.")
    else:
        messages.info(request, f"The campaign is {campaign.status}; only a failed one is retried.")
    return redirect("annotation:campaign", pk=campaign.pk)


@researcher_required
@require_POST
def judge_run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    judge_run = get_object_or_404(JudgeRun, pk=pk)
    if judge_run_retry_service(judge_run=judge_run, user=request.user):
        messages.success(request, f"Judge run #{pk} queued again; it keeps the votes it stored.")
    else:
        messages.info(
            request, f"Judge run #{pk} is {judge_run.status}; only a failed one is retried."
        )
    return redirect(reverse("annotation:results", args=[judge_run.campaign_id]) + "#judges")


@researcher_required
@require_POST
def judge_start(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = JudgeRunForm(request.POST)
    if form.is_valid():
        try:
            judge_run_create(campaign=campaign, spec=form.spec(), created_by=request.user)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
        else:
            messages.success(request, "The judge is queued on both orders of every item.")
            return redirect("annotation:results", pk=campaign.pk)
    else:
        messages.error(
            request,
            "; ".join(
                f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
                for name, errors in form.errors.items()
            ),
        )
    # Refused: the results page with the reason, answered 400 (nothing was queued).
    response = campaign_results(request, pk=campaign.pk)
    response.status_code = 400
    return response


def _jsonl(rows: Any, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(exports.as_jsonl(rows), content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@researcher_required
def export_votes(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    return _jsonl(exports.vote_rows(campaign), f"campaign-{campaign.pk}-votes.jsonl")


@researcher_required
def export_votes_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    response = StreamingHttpResponse(
        exports.as_csv(exports.vote_rows(campaign), exports.VOTE_COLUMNS),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-votes.csv"'
    return response


@researcher_required
def export_preferences(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=pk)
    form = PreferenceExportForm(request.GET or None)
    if request.GET and not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    options = form.cleaned_data if request.GET else {}
    rows = exports.preference_rows(
        campaign,
        min_votes=options.get("min_votes") or 1,
        min_agreement=(options.get("min_agreement_percent") or 0) / 100,
    )
    return _jsonl(rows, f"campaign-{campaign.pk}-preferences.jsonl")
