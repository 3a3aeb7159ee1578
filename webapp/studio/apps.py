from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate

from rl_engine.judging.endpoints import default_registry


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"
    verbose_name = "Writing-RL Studio"

    def ready(self) -> None:
        # Here, not at the top: these modules import models, which may load only once the app
        # registry is ready. ``tasks`` registers the app's Celery tasks in every process that
        # loads Django, so services can send them by name (workers.dispatch).
        from webapp.studio import tasks  # noqa: F401
        from webapp.studio.roles import on_post_migrate

        post_migrate.connect(on_post_migrate, dispatch_uid="writing-rl-roles")
        # The deployment's endpoints are read at start-up: a bad declaration stops the web
        # app and the workers here, naming the entry, rather than failing a run later.
        try:
            default_registry()
        except ValueError as exc:
            raise ImproperlyConfigured(f"model endpoints: {exc}") from None
