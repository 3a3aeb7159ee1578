from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "webapp.ops"
    label = "ops"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process that loads Django, so services
        # can send them by name (workers.dispatch). Here, not at the top: a tasks module
        # imports models, which may load only once the app registry is ready.
        from webapp.ops import tasks  # noqa: F401
