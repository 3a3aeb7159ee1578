"""The landing page: researchers see the dashboard, annotators their evaluation queue."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from webapp.studio.permissions import is_researcher


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if not is_researcher(request.user):
        try:
            return redirect(reverse("annotation:queue"))
        except NoReverseMatch:
            return render(request, "studio/annotator_home.html")
    return redirect("studio:dashboard")
