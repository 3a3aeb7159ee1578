"""Create (or reset) the demo researcher and annotator and print their passwords."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the demo researcher (staff) and annotator with fresh passwords, and print them."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--researcher", default="researcher")
        parser.add_argument("--annotator", default="annotator")
        parser.add_argument(
            "--password",
            default=None,
            help="Use this password for both users instead of generating one each.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        accounts = [
            (options["researcher"], True, "researcher (staff)"),
            (options["annotator"], False, "annotator"),
        ]
        for username, staff, role in accounts:
            password = options["password"] or secrets.token_urlsafe(9)
            user, _ = user_model.objects.get_or_create(username=username)
            user.is_staff = staff
            user.is_superuser = staff
            user.is_active = True
            user.set_password(password)
            user.save()
            self.stdout.write(f"  {role:<20} username: {username:<12} password: {password}")
