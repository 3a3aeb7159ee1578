"""The Django admin for every studio model.

Large tables (judgments, transitions, curriculum states) use ``raw_id_fields`` and
``list_select_related`` so a change list is a constant number of queries whatever the size,
and ``show_full_result_count = False`` to skip a COUNT(*) over millions of rows.
"""

from __future__ import annotations

from django.contrib import admin

from webapp.studio.models import (
    AuditLog,
    Checkpoint,
    CurriculumState,
    CurriculumTransition,
    Dataset,
    Instruction,
    Judgment,
    PipelineJob,
    PolicyResponse,
    Reference,
    Run,
    Selection,
    SelectionEntry,
    StepMetric,
)


class BigTableAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_per_page = 50


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "source_format", "source_filename", "created_by", "created_at")
    list_filter = ("source_format",)
    search_fields = ("name", "description", "source_filename")
    list_select_related = ("created_by",)
    raw_id_fields = ("created_by",)
    date_hierarchy = "created_at"


class ReferenceInline(admin.TabularInline):
    model = Reference
    fields = ("tier", "writer", "score", "source", "text")
    raw_id_fields = ("added_by",)
    extra = 0
    ordering = ("tier",)


@admin.register(Instruction)
class InstructionAdmin(BigTableAdmin):
    list_display = ("external_id", "dataset", "domain", "split", "required_words", "created_at")
    list_filter = ("split", "dataset")
    search_fields = ("external_id", "prompt", "domain", "subdomain")
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset",)
    inlines = [ReferenceInline]


@admin.register(Reference)
class ReferenceAdmin(BigTableAdmin):
    list_display = ("id", "instruction", "tier", "writer", "score", "source", "created_at")
    list_filter = ("source",)
    search_fields = ("writer", "instruction__external_id", "text")
    list_select_related = ("instruction",)
    raw_id_fields = ("instruction", "added_by")


@admin.register(PolicyResponse)
class PolicyResponseAdmin(BigTableAdmin):
    list_display = ("id", "instruction", "policy", "score", "created_at")
    search_fields = ("policy", "instruction__external_id")
    list_select_related = ("instruction",)
    raw_id_fields = ("instruction",)


class SelectionEntryInline(admin.TabularInline):
    model = SelectionEntry
    fields = ("instruction", "learning_potential", "policy_score", "chosen")
    raw_id_fields = ("instruction",)
    extra = 0
    max_num = 0
    show_change_link = False


@admin.register(Selection)
class SelectionAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "strategy", "k", "policy", "seed", "created_by", "created_at")
    list_filter = ("strategy",)
    search_fields = ("dataset__name", "policy")
    list_select_related = ("dataset", "created_by")
    raw_id_fields = ("dataset", "created_by")


@admin.register(SelectionEntry)
class SelectionEntryAdmin(BigTableAdmin):
    list_display = (
        "id",
        "selection",
        "instruction",
        "learning_potential",
        "policy_score",
        "chosen",
    )
    list_filter = ("chosen",)
    search_fields = ("instruction__external_id",)
    list_select_related = ("selection", "instruction")
    raw_id_fields = ("selection", "instruction")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = (
        "id", "name", "dataset", "status", "current_step", "total_steps", "progress",
        "owner", "attempts", "created_at", "finished_at",
    )  # fmt: skip
    list_filter = ("status", "cancel_requested")
    search_fields = ("name", "group", "dataset__name", "task_id")
    list_select_related = ("dataset", "owner")
    raw_id_fields = ("dataset", "selection", "owner")
    readonly_fields = ("heartbeat_at", "claimed_by", "attempts", "started_at", "finished_at")


@admin.register(CurriculumState)
class CurriculumStateAdmin(BigTableAdmin):
    list_display = (
        "id", "run", "instruction", "tier", "num_tiers", "mastered", "last_step",
        "last_move_step", "wins", "ties", "losses", "invalid",
    )  # fmt: skip
    list_filter = ("mastered",)
    search_fields = ("instruction__external_id", "run__name")
    list_select_related = ("run", "instruction")
    raw_id_fields = ("run", "instruction")


@admin.register(CurriculumTransition)
class CurriculumTransitionAdmin(BigTableAdmin):
    list_display = ("id", "run", "instruction", "step", "from_tier", "to_tier", "mastered", "cause")
    list_filter = ("cause", "mastered")
    search_fields = ("instruction__external_id", "run__name")
    list_select_related = ("run", "instruction")
    raw_id_fields = ("run", "instruction")


@admin.register(Judgment)
class JudgmentAdmin(BigTableAdmin):
    list_display = (
        "id", "run", "instruction", "step", "reference_tier", "verdict", "reward", "judge",
        "latency_s",
    )  # fmt: skip
    list_filter = ("verdict", "position")
    search_fields = ("instruction__external_id", "judge", "run__name")
    list_select_related = ("run", "instruction")
    raw_id_fields = ("run", "instruction")


@admin.register(StepMetric)
class StepMetricAdmin(BigTableAdmin):
    list_display = ("id", "run", "step", "created_at")
    search_fields = ("run__name",)
    list_select_related = ("run",)
    raw_id_fields = ("run",)


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "step", "path", "created_at")
    search_fields = ("run__name", "path")
    list_select_related = ("run",)
    raw_id_fields = ("run",)


@admin.register(PipelineJob)
class PipelineJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "dataset", "status", "progress", "message", "owner", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("dataset__name", "message", "task_id")
    list_select_related = ("dataset", "owner")
    raw_id_fields = ("dataset", "owner")


@admin.register(AuditLog)
class AuditLogAdmin(BigTableAdmin):
    list_display = ("id", "created_at", "actor", "action", "run", "instruction")
    list_filter = ("action",)
    search_fields = ("action", "actor__username", "run__name", "instruction__external_id")
    list_select_related = ("actor", "run", "instruction")
    raw_id_fields = ("actor", "run", "instruction")
    date_hierarchy = "created_at"
