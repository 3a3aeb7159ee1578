from django.urls import path

from webapp.annotation import views

app_name = "annotation"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign"),
    path("campaigns/<int:pk>/work/", views.work, name="work"),
    path("campaigns/<int:pk>/undo/", views.vote_undo, name="undo"),
    path("campaigns/<int:pk>/results/", views.campaign_results, name="results"),
    path("campaigns/<int:pk>/judge/", views.judge_start, name="judge"),
    path("campaigns/<int:pk>/retry/", views.campaign_retry, name="campaign_retry"),
    path("judge-runs/<int:pk>/retry/", views.judge_run_retry, name="judge_run_retry"),
    path("campaigns/<int:pk>/votes.jsonl", views.export_votes, name="export_votes"),
    path("campaigns/<int:pk>/votes.csv", views.export_votes_csv, name="export_votes_csv"),
    path(
        "campaigns/<int:pk>/preferences.jsonl",
        views.export_preferences,
        name="export_preferences",
    ),
    path("assignments/<int:pk>/", views.assignment_detail, name="assignment"),
    path("assignments/<int:pk>/vote/", views.vote, name="vote"),
]
