"""Stored evaluation and ablation judges name a declared endpoint (see
rl_engine.judging.endpoints.upgrade_stored_spec); stored key variables are removed."""

from django.db import migrations

from rl_engine.judging.endpoints import upgrade_stored_spec


def forwards(apps, schema_editor):
    EvalRun = apps.get_model("evals", "EvalRun")
    for run in EvalRun.objects.exclude(judge={}).only("pk", "judge"):
        upgraded = upgrade_stored_spec(run.judge)
        if upgraded != run.judge:
            EvalRun.objects.filter(pk=run.pk).update(judge=upgraded)
    Ablation = apps.get_model("evals", "AblationGrid")
    for ablation in Ablation.objects.only("pk", "base_config", "eval_judge"):
        base = dict(ablation.base_config or {})
        if "judge" in base:
            base["judge"] = upgrade_stored_spec(base["judge"])
        judge = upgrade_stored_spec(ablation.eval_judge)
        if base != ablation.base_config or judge != ablation.eval_judge:
            Ablation.objects.filter(pk=ablation.pk).update(base_config=base, eval_judge=judge)


class Migration(migrations.Migration):
    dependencies = [("evals", "0004_run_evaluation")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
