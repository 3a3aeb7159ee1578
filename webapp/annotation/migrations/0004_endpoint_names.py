"""Stored campaign-judge specs name a declared endpoint (see
rl_engine.judging.endpoints.upgrade_stored_spec); a stored key variable — or a key pasted
where its name went, which the admin used to show — is removed."""

from django.db import migrations

from rl_engine.judging.endpoints import upgrade_stored_spec


def forwards(apps, schema_editor):
    JudgeRun = apps.get_model("annotation", "JudgeRun")
    for judge_run in JudgeRun.objects.only("pk", "spec"):
        upgraded = upgrade_stored_spec(judge_run.spec)
        if upgraded != judge_run.spec:
            JudgeRun.objects.filter(pk=judge_run.pk).update(spec=upgraded)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0003_campaign_judgerun_leases")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
