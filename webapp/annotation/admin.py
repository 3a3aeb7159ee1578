from django.contrib import admin

from webapp.annotation.models import (
    Assignment,
    Campaign,
    Item,
    JudgeRun,
    JudgeVote,
    System,
    SystemOutput,
    Vote,
)


class SystemInline(admin.TabularInline):
    model = System
    extra = 0
    raw_id_fields = ("checkpoint", "run")


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "overlap", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    filter_horizontal = ("annotators",)
    raw_id_fields = ("instructions",)
    inlines = [SystemInline]


@admin.register(SystemOutput)
class SystemOutputAdmin(admin.ModelAdmin):
    list_display = ("system", "instruction", "created_at")
    raw_id_fields = ("system", "instruction")


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = (
        "campaign",
        "position",
        "instruction",
        "system_a",
        "system_b",
        "votes_done",
        "complete",
    )
    list_filter = ("campaign", "complete")
    raw_id_fields = ("instruction", "output_a", "output_b", "system_a", "system_b")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("item", "annotator", "status", "a_on_left", "leased_until")
    list_filter = ("status",)
    raw_id_fields = ("item",)


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("item", "annotator", "choice", "outcome", "created_at")
    list_filter = ("outcome",)
    raw_id_fields = ("item", "assignment", "left_system", "winner")


@admin.register(JudgeRun)
class JudgeRunAdmin(admin.ModelAdmin):
    list_display = ("campaign", "judge_name", "status", "created_at")


@admin.register(JudgeVote)
class JudgeVoteAdmin(admin.ModelAdmin):
    list_display = ("judge_run", "item", "order", "verdict", "outcome")
    raw_id_fields = ("item",)
