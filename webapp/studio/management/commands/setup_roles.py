"""Create (or repair) the researcher group and its permissions (``webapp.studio.roles``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from webapp.studio.roles import ensure_roles


class Command(BaseCommand):
    help = "Create or repair the 'researcher' group with its permissions (migrate does it too)."

    def handle(self, *args: Any, **options: Any) -> None:
        group = ensure_roles()
        names = sorted(
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        )
        self.stdout.write(f"group {group.name!r}: {len(names)} permission(s)")
