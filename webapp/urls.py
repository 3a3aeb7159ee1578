"""URL map: the studio (researchers), the admin, login and logout."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.studio.views_home import home

urlpatterns = [
    path("", home, name="home"),
    path("studio/", include("webapp.studio.urls")),
    path("annotate/", include("webapp.annotation.urls")),
    path("evals/", include("webapp.evals.urls")),
    path("", include("webapp.ops.urls")),
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
