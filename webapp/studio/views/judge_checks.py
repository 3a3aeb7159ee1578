"""Judge checks: check a judge on a dataset's reference pairs, and read a stored report.

A check asked for from a page runs in the request: ``pairs`` x 2 judgments, at most
``MAX_UI_PAIRS`` pairs, each bounded by the judge's own timeout and retries.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from rl_engine.judging.check import JudgeCheckThresholds
from rl_engine.judging.endpoints import looks_like_secret
from rl_engine.training import TrainConfig
from webapp.studio.models import Dataset, JudgeCheck
from webapp.studio.permissions import researcher_required
from webapp.studio.services.judge_check import (
    DEFAULT_PAIRS,
    JudgeCheckError,
    judge_check_report,
    judge_check_run,
    parse_judge_spec,
)
from webapp.studio.spec_forms import PASTED_KEY_MESSAGE

MAX_UI_PAIRS = 32


def default_judge_json() -> str:
    """The judge a new run gets by default, as the JSON the form shows."""
    return json.dumps(TrainConfig().judge.to_dict(), indent=2)


class JudgeCheckForm(forms.Form):
    """A judge (its JudgeSpec as JSON), how many pairs, and the thresholds to pass."""

    judge = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}),
        help_text="The judge as a JudgeSpec JSON object (the same as a run's config 'judge').",
    )
    pairs = forms.IntegerField(
        min_value=1,
        max_value=MAX_UI_PAIRS,
        initial=DEFAULT_PAIRS,
        help_text=f"Reference pairs of two different tiers, each judged in both orders "
        f"(1..{MAX_UI_PAIRS}; the check runs while you wait).",
    )
    min_parse_rate = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=JudgeCheckThresholds.min_parse_rate,
        help_text="Share of judgments that must give a verdict.",
    )
    min_consistency = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=JudgeCheckThresholds.min_position_consistency,
        help_text="Share of pairs that must get the same winner in both orders.",
    )

    def clean_judge(self) -> Any:
        if looks_like_secret(self.cleaned_data["judge"]):
            self.data = self.data.copy()  # blanked in the form shown again: never echoed
            self.data[self.add_prefix("judge")] = ""
            raise forms.ValidationError(PASTED_KEY_MESSAGE)
        try:
            payload = json.loads(self.cleaned_data["judge"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not JSON: {error}") from None
        try:
            return parse_judge_spec(payload)
        except JudgeCheckError as error:
            raise forms.ValidationError(str(error)) from None


def judge_check_form(data: Any = None) -> JudgeCheckForm:
    return JudgeCheckForm(data, initial={"judge": default_judge_json()}, auto_id="id_check_%s")


@researcher_required
@require_POST
def judge_check_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Check the posted judge on the dataset's reference pairs, then show the report."""
    dataset = get_object_or_404(Dataset, pk=pk)
    form = judge_check_form(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            check = judge_check_run(
                dataset=dataset,
                spec=data["judge"],
                n=data["pairs"],
                thresholds=JudgeCheckThresholds(data["min_parse_rate"], data["min_consistency"]),
                owner=request.user,
            )
        except JudgeCheckError as error:
            form.add_error(None, str(error))
        else:
            outcome = "passed" if check.passed else "failed"
            messages.info(request, f"Judge check #{check.pk} {outcome}.")
            return redirect("studio:judge_check_detail", pk=check.pk)
    checks = list(JudgeCheck.objects.filter(dataset=dataset)[:10])
    return render(
        request,
        "studio/judge_check_new.html",
        {"dataset": dataset, "form": form, "checks": checks},
        status=400,
    )


@researcher_required
def judge_check_detail(request: HttpRequest, pk: int) -> HttpResponse:
    check = get_object_or_404(JudgeCheck.objects.select_related("dataset", "run", "owner"), pk=pk)
    return render(
        request,
        "studio/judge_check_detail.html",
        {"check": check, "report": judge_check_report(check)},
    )
