"""Access rules of the pages (roles: ``webapp.studio.roles``).

Researchers hold ``studio.use_studio`` (through the ``researcher`` group, or as superusers):
they import data, launch and control runs, evaluations and campaigns. Every other active user
is an annotator and reaches only the annotation pages of their own campaigns.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

from webapp.studio.roles import USE_STUDIO

View = Callable[..., HttpResponse]


def is_researcher(user: Any) -> bool:
    return bool(user.is_authenticated and user.is_active and user.has_perm(USE_STUDIO))


def researcher_required(view: View) -> View:
    """Anonymous users go to the login page; logged-in users without the role get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_researcher(request.user):
            raise PermissionDenied("This page is for researchers.")
        return view(request, *args, **kwargs)

    return wrapper


annotator_required = login_required
