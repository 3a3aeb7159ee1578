"""Create (or reset) the demo admin, researcher and annotator and print their passwords."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.studio.roles import ensure_roles


class Command(BaseCommand):
    help = (
        "Create the demo admin (superuser), researcher (the researcher group, not a superuser) "
        "and annotator with fresh passwords, and print them."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--admin", default="admin")
        parser.add_argument("--researcher", default="researcher")
        parser.add_argument("--annotator", default="annotator")
        parser.add_argument(
            "--password",
            default=None,
            help="Use this password for every user instead of generating one each; it must "
            "pass the password validators (AUTH_PASSWORD_VALIDATORS).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        names = [options["admin"], options["researcher"], options["annotator"]]
        if len(set(names)) != 3:
            raise CommandError(
                f"--admin, --researcher and --annotator must differ, got {names}", returncode=2
            )
        accounts = [
            (options["admin"], "admin"),
            (options["researcher"], "researcher"),
            (options["annotator"], "annotator"),
        ]
        passwords = {}
        for username, _ in accounts:
            password = options["password"] or secrets.token_urlsafe(12)
            try:
                validate_password(password, user_model(username=username))
            except ValidationError as error:
                raise CommandError(
                    f"--password: {' '.join(error.messages)} Nothing was changed.", returncode=2
                ) from None
            passwords[username] = password
        with transaction.atomic():
            group = ensure_roles()
            for username, role in accounts:
                user, _ = user_model.objects.get_or_create(username=username)
                user.is_active = True
                user.is_superuser = role == "admin"
                user.is_staff = role in ("admin", "researcher")
                user.set_password(passwords[username])
                user.save()
                if role == "researcher":
                    user.groups.add(group)
                else:
                    user.groups.remove(group)
        for username, role in accounts:
            self.stdout.write(
                f"  {role:<12} username: {username:<12} password: {passwords[username]}"
            )
