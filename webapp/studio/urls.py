from django.urls import path

from webapp.studio import views

app_name = "studio"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/select/", views.selection_new, name="selection_new"),
    path("datasets/<int:pk>/jobs/new/", views.job_new, name="job_new"),
    path("datasets/<int:pk>/prepare/", views.references_prepare, name="references_prepare"),
    path("jobs/<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("datasets/<int:pk>/judge-check/", views.judge_check_new, name="judge_check_new"),
    path("judge-checks/<int:pk>/", views.judge_check_detail, name="judge_check_detail"),
    path("selections/<int:pk>/", views.selection_detail, name="selection_detail"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/new/estimate/", views.run_new_estimate, name="run_new_estimate"),
    path("runs/new/selections/", views.run_new_selections, name="run_new_selections"),
    path("runs/compare/", views.run_compare, name="run_compare"),
    path("runs/<int:pk>/", views.run_detail, name="run_detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run_cancel"),
    path("runs/<int:pk>/resume/", views.run_resume, name="run_resume"),
    path("runs/<int:pk>/log/", views.run_log, name="run_log"),
    path("runs/<int:pk>/metrics.csv", views.run_metrics_csv, name="run_metrics_csv"),
    path("runs/<int:pk>/metrics.json", views.run_metrics_json, name="run_metrics_json"),
    path("runs/<int:pk>/samples/", views.sample_list, name="sample_list"),
    path("runs/<int:pk>/samples/<int:instruction_pk>/", views.sample_detail, name="sample_detail"),
    path(
        "runs/<int:pk>/samples/<int:instruction_pk>/tier/",
        views.sample_set_tier,
        name="sample_set_tier",
    ),
    path(
        "runs/<int:pk>/samples/<int:instruction_pk>/reference/",
        views.sample_add_reference,
        name="sample_add_reference",
    ),
]
