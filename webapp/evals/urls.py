from django.urls import path

from webapp.evals import views

app_name = "evals"

urlpatterns = [
    path("", views.eval_list, name="list"),
    path("new/", views.eval_new, name="new"),
    path("<int:pk>/", views.eval_detail, name="detail"),
    path("<int:pk>/cancel/", views.eval_cancel, name="cancel"),
    path("<int:pk>/retry/", views.eval_retry, name="retry"),
    path("<int:pk>/results.csv", views.eval_results_csv, name="results_csv"),
    path("runs/<int:run_id>/evaluate/", views.run_evaluate, name="run_evaluate"),
    path("run-evaluations/<int:pk>/", views.run_evaluation_detail, name="run_evaluation"),
    path("run-evaluations/<int:pk>/table.csv", views.run_evaluation_csv, name="run_evaluation_csv"),
    path("compare/", views.compare, name="compare"),
    path("compare.csv", views.compare_csv, name="compare_csv"),
    path("long-input/", views.long_input_list, name="long_input_list"),
    path("ablations/", views.ablation_list, name="ablation_list"),
    path("ablations/new/", views.ablation_new, name="ablation_new"),
    path("ablations/<int:pk>/", views.ablation_detail, name="ablation_detail"),
    path("ablations/<int:pk>/evaluate/", views.ablation_evaluate, name="ablation_evaluate"),
    path("ablations/<int:pk>/results.csv", views.ablation_csv, name="ablation_csv"),
    path("ablations/<int:pk>/arms.csv", views.ablation_arms_csv, name="ablation_arms_csv"),
]
