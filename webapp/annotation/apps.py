from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "webapp.annotation"
    label = "annotation"

    def ready(self) -> None:
        # Registers this app's Celery tasks in every process that loads Django, so services
        # can send them by name (workers.dispatch). Here, not at the top: a tasks module
        # imports models, which may load only once the app registry is ready.
        from webapp.annotation import tasks  # noqa: F401
