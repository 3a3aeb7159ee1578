from django.contrib import admin

from webapp.evals.models import (
    AblationCell,
    AblationGrid,
    EvalItemResult,
    EvalRun,
    LongInputBenchmark,
    LongInputQuestion,
)


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "benchmark", "system_kind", "status", "progress", "created_at")
    list_filter = ("benchmark", "status", "system_kind")
    search_fields = ("name", "base_model")
    raw_id_fields = ("checkpoint", "training_run", "dataset", "long_input", "baseline_run")


@admin.register(EvalItemResult)
class EvalItemResultAdmin(admin.ModelAdmin):
    list_display = ("id", "eval_run", "item_id", "iteration", "score", "judged")
    list_filter = ("judged",)
    raw_id_fields = ("eval_run", "instruction", "question")


@admin.register(LongInputBenchmark)
class LongInputBenchmarkAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "source_filename", "created_at")


@admin.register(LongInputQuestion)
class LongInputQuestionAdmin(admin.ModelAdmin):
    list_display = ("id", "benchmark", "external_id", "difficulty", "length", "answer")
    list_filter = ("difficulty", "length")


class AblationCellInline(admin.TabularInline):
    model = AblationCell
    raw_id_fields = ("run", "eval_run", "selection_used")
    extra = 0


@admin.register(AblationGrid)
class AblationGridAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "group", "dataset", "eval_benchmark", "created_at")
    inlines = [AblationCellInline]
