"""The three roles of a shared instance, as Django groups and permissions.

* **admin**: a superuser. Manages users and everything in the admin site.
* **researcher**: a member of the ``researcher`` group, which holds ``studio.use_studio`` (the
  studio, evaluations and campaigns) and the *view* permission of every studio, annotation and
  evaluation model (so the admin site shows them those tables, read-only, and nothing else).
  Researchers are staff only so that they can open the admin site; staff alone grants nothing.
* **annotator**: any other active user. Sees only the campaigns they are assigned to.

:func:`ensure_roles` creates the group and gives it its permissions; it runs after every
``migrate`` (and after the test database is flushed) and from ``manage.py setup_roles``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

RESEARCHER_GROUP = "researcher"
USE_STUDIO = "studio.use_studio"
# Apps whose models researchers may view in the admin site.
RESEARCH_APPS = ("studio", "annotation", "evals")


def ensure_roles(using: str = "default") -> Any:
    """Create (or repair) the researcher group; returns it."""
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.using(using).get_or_create(name=RESEARCHER_GROUP)
    app_label, codename = USE_STUDIO.split(".")
    wanted = Permission.objects.using(using).filter(
        Q(content_type__app_label=app_label, codename=codename)
        | Q(content_type__app_label__in=RESEARCH_APPS, codename__startswith="view_")
    )
    group.permissions.set(wanted)
    return group


def grant_researcher(user: Any) -> Any:
    """Make ``user`` a researcher (not a superuser): the group, and staff for the admin site."""
    group = ensure_roles()
    user.groups.add(group)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    # Django caches permissions on the user object.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(cache, None)
    return user


def on_post_migrate(sender: Any, using: str = "default", **kwargs: Any) -> None:
    # Permissions of an app exist once its own post_migrate ran; setting them again after each
    # app is idempotent, and after the last one the group holds all of them.
    from django.contrib.auth.models import Permission

    if Permission.objects.using(using).filter(content_type__app_label="studio").exists():
        ensure_roles(using)
