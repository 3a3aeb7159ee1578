from django.apps import AppConfig
from django.db.models.signals import post_migrate


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"
    verbose_name = "Writing-RL Studio"

    def ready(self) -> None:
        from webapp.studio.roles import on_post_migrate

        post_migrate.connect(on_post_migrate, dispatch_uid="writing-rl-roles")
