from django.urls import path

from webapp.studio import views

app_name = "studio"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
