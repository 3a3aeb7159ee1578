"""Stored judge, scorer and writer specs name a declared endpoint instead of a base URL and a
key variable (see rl_engine.judging.endpoints.upgrade_stored_spec). A stored key variable —
or a key pasted where its name went — is removed. Specs whose URL no declared endpoint
serves keep it and are refused, with the reason, when used."""

from django.db import migrations

from rl_engine.judging.endpoints import upgrade_stored_spec


def forwards(apps, schema_editor):
    Run = apps.get_model("studio", "Run")
    for run in Run.objects.exclude(config={}).only("pk", "config"):
        config = dict(run.config or {})
        if "judge" in config:
            upgraded = upgrade_stored_spec(config["judge"])
            if upgraded != config["judge"]:
                config["judge"] = upgraded
                Run.objects.filter(pk=run.pk).update(config=config)
    PipelineJob = apps.get_model("studio", "PipelineJob")
    for job in PipelineJob.objects.exclude(params={}).only("pk", "params"):
        params = dict(job.params or {})
        if params.get("scorer"):
            params["scorer"] = upgrade_stored_spec(params["scorer"])
        if isinstance(params.get("writers"), list):
            params["writers"] = [upgrade_stored_spec(w, writer=True) for w in params["writers"]]
        if params != job.params:
            PipelineJob.objects.filter(pk=job.pk).update(params=params)


class Migration(migrations.Migration):
    dependencies = [("studio", "0009_pipeline_job_partial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
