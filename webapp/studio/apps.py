from django.apps import AppConfig


class StudioConfig(AppConfig):
    name = "webapp.studio"
    label = "studio"
    verbose_name = "Writing-RL Studio"
