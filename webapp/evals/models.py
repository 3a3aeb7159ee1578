"""Evaluation runs: a system (checkpoint, base model or reference tier) on a benchmark.

An :class:`EvalRun` evaluates one system on one benchmark kind, over a dataset split (its
instructions) or an imported long-input benchmark file (:class:`LongInputBenchmark`). Each
response and its judgment is an :class:`EvalItemResult`. An :class:`AblationGrid` is the
paper's grid of training runs (linked by ``Run.group``), each cell evaluated the same way.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings as django_settings
from django.db import models

from rl_engine.evaluation.longinput import EXTRACTION_LABELS
from webapp.studio.models import Checkpoint, Dataset, Instruction, Run, Selection, WorkerLease


class Benchmark(models.TextChoices):
    WRITINGBENCH = "writingbench", "WritingBench (criteria 1-10)"
    LONGBENCH_WRITE = "longbench_write", "LongBench-Write (S_l, S_q)"
    CREATIVE = "creative", "Creative writing rubric (0-20)"
    LONGBENCH_V2 = "longbench_v2", "Long-input multiple choice (LongBench v2 style)"
    PAIRWISE = "pairwise", "Pairwise win rate against a baseline"


class LongInputBenchmark(models.Model):
    """An imported LongBench v2-style JSONL file (context, question, four choices, answer,
    difficulty, length)."""

    name = models.CharField(max_length=200, unique=True)
    source_filename = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class LongInputQuestion(models.Model):
    benchmark = models.ForeignKey(
        LongInputBenchmark, on_delete=models.CASCADE, related_name="questions"
    )
    external_id = models.CharField(max_length=200)
    context = models.TextField()
    question = models.TextField()
    choices = models.JSONField(help_text="The four choices, A to D, in order.")
    answer = models.CharField(max_length=1)
    difficulty = models.CharField(max_length=10)
    length = models.CharField(max_length=10)
    domain = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["benchmark_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["benchmark", "external_id"], name="uniq_longinput_question"
            )
        ]

    def __str__(self) -> str:
        return f"{self.benchmark_id}:{self.external_id}"


class RunEvaluation(models.Model):
    """One launch that evaluates a training run: its chosen checkpoints plus the base policy,
    on each chosen benchmark, every system on the same items. Each (system, benchmark) is an
    :class:`EvalRun` linked here."""

    training_run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="evaluations")
    name = models.CharField(max_length=200)
    benchmarks = models.JSONField(default=list)
    steps = models.JSONField(default=list, help_text="Checkpoint steps evaluated.")
    base_policy = models.CharField(max_length=500, blank=True, help_text="Empty: no base row.")
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    split = models.CharField(max_length=10, blank=True)
    long_input = models.ForeignKey(
        LongInputBenchmark, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    limit = models.PositiveIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class EvalRun(WorkerLease):
    class SystemKind(models.TextChoices):
        CHECKPOINT = "checkpoint", "training checkpoint"
        BASE_MODEL = "base_model", "base model"
        REFERENCE_TIER = "reference_tier", "reference tier"

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        GENERATING = "generating", "generating"
        JUDGING = "judging", "judging"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.QUEUED, Status.GENERATING, Status.JUDGING)

    name = models.CharField(max_length=200)
    benchmark = models.CharField(max_length=30, choices=Benchmark.choices)
    system_kind = models.CharField(max_length=20, choices=SystemKind.choices)
    checkpoint = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_runs"
    )
    base_model = models.CharField(
        max_length=500, blank=True, help_text="Policy name or local HF checkpoint path."
    )
    reference_tier = models.IntegerField(
        null=True, blank=True, help_text="Tier whose references are the system's answers."
    )
    training_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="eval_runs"
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="eval_runs"
    )
    split = models.CharField(max_length=10, blank=True, help_text="Empty = every split.")
    long_input = models.ForeignKey(
        LongInputBenchmark, null=True, blank=True, on_delete=models.PROTECT,
        related_name="eval_runs",
    )  # fmt: skip
    baseline_tier = models.IntegerField(
        null=True, blank=True, help_text="Pairwise: the reference tier the system plays against."
    )
    baseline_run = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Pairwise: another evaluation whose responses are the baseline.",
    )  # fmt: skip
    limit = models.PositiveIntegerField(null=True, blank=True, help_text="At most this many items.")
    run_evaluation = models.ForeignKey(
        RunEvaluation, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    settings = models.JSONField(default=dict, help_text="EvalSettings.to_dict()")
    judge = models.JSONField(default=dict, help_text="JudgeSpec.to_dict()")
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0, help_text="0..1")
    error = models.TextField(blank=True)
    aggregates = models.JSONField(default=dict, blank=True)
    generation_s = models.FloatField(null=True, blank=True)
    judging_s = models.FloatField(null=True, blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def judge_endpoint(self) -> str:
        """The judge's endpoint name (``kind`` for a spec stored before the registry)."""
        return str(self.judge.get("endpoint") or self.judge.get("kind") or "heuristic")

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def score(self) -> float | None:
        value = (self.aggregates or {}).get("score")
        return float(value) if isinstance(value, int | float) else None

    @property
    def items_judged(self) -> int | None:
        """How many responses the aggregates cover (None until judging has finished)."""
        value = (self.aggregates or {}).get("items")
        return value if isinstance(value, int) else None

    @property
    def items_with_errors(self) -> int:
        value = (self.aggregates or {}).get("errors")
        return value if isinstance(value, int) else 0

    @property
    def scoring_variant(self) -> str:
        """A label when the scores come from a deliberately non-official scoring variant (shown
        beside every number of this evaluation), else ""."""
        if self.benchmark == Benchmark.LONGBENCH_V2:
            extraction = (self.settings or {}).get("extraction", "official")
            if extraction != "official":
                return EXTRACTION_LABELS.get(extraction, f"{extraction} extraction")
        return ""

    @property
    def system_label(self) -> str:
        if self.system_kind == self.SystemKind.CHECKPOINT and self.checkpoint_id:
            return f"run {self.checkpoint.run_id} · step {self.checkpoint.step}"  # type: ignore[union-attr]
        if self.system_kind == self.SystemKind.REFERENCE_TIER:
            return f"reference tier {self.reference_tier}"
        if self.training_run_id and self.base_model:
            return f"run {self.training_run_id} · {Path(self.base_model).name}"
        return self.base_model or "base model"

    @property
    def source_label(self) -> str:
        if self.long_input_id:
            return str(self.long_input)
        split = f" · {self.split}" if self.split else ""
        return f"{self.dataset}{split}"


class EvalItemResult(models.Model):
    """One response of the system and its judgment. ``score`` is 0-100 (None: not judged,
    ``error`` says why)."""

    eval_run = models.ForeignKey(EvalRun, on_delete=models.CASCADE, related_name="results")
    item_id = models.CharField(max_length=200)
    iteration = models.PositiveIntegerField(default=0)
    instruction = models.ForeignKey(Instruction, null=True, blank=True, on_delete=models.CASCADE)
    question = models.ForeignKey(LongInputQuestion, null=True, blank=True, on_delete=models.CASCADE)
    domain = models.CharField(max_length=200, blank=True)
    required_words = models.PositiveIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    produced_words = models.PositiveIntegerField(default=0)
    context_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Long input: tokens of the context before truncation."
    )
    truncated_tokens = models.PositiveIntegerField(default=0)
    judged = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    judge_latency_s = models.FloatField(null=True, blank=True)
    # What judging it cost: requests (re-asks and retries included) and reported tokens.
    judge_attempts = models.PositiveIntegerField(default=0)
    judge_prompt_tokens = models.PositiveIntegerField(default=0)
    judge_completion_tokens = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["eval_run_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["eval_run", "item_id", "iteration"], name="uniq_eval_item_result"
            )
        ]

    def __str__(self) -> str:
        return f"{self.eval_run_id}:{self.item_id}#{self.iteration}"


class AblationGrid(models.Model):
    """The paper's ablation grid: selection x reward x curriculum, as linked training runs."""

    name = models.CharField(max_length=200)
    group = models.CharField(max_length=200, unique=True, help_text="Run.group of its runs.")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="ablations")
    base_config = models.JSONField(default=dict, help_text="TrainConfig shared by every cell.")
    eval_benchmark = models.CharField(max_length=30, choices=Benchmark.choices)
    eval_split = models.CharField(max_length=10, default=Instruction.Split.EVAL)
    eval_settings = models.JSONField(default=dict)
    eval_judge = models.JSONField(default=dict)
    eval_limit = models.PositiveIntegerField(null=True, blank=True)
    eval_baseline_tier = models.IntegerField(null=True, blank=True)
    seeds = models.JSONField(default=list, blank=True, help_text="The seeds of every arm.")
    base_eval_run = models.ForeignKey(
        EvalRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The base policy evaluated like the cells (held-out split): the baseline "
        "of the win rates.",
    )  # fmt: skip
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class AblationCell(models.Model):
    class SelectionAxis(models.TextChoices):
        MARGIN = "margin", "margin-aware"
        DIFFICULTY = "difficulty", "difficulty"
        RANDOM = "random", "random"
        FULL = "full", "full data"

    class RewardAxis(models.TextChoices):
        PAIRWISE = "pairwise", "pairwise"
        POINTWISE = "pointwise", "pointwise"

    class CurriculumAxis(models.TextChoices):
        DYNAMIC = "dynamic", "dynamic"
        STATIC = "static", "static (top tier)"
        RANDOM = "random", "random tier"

    grid = models.ForeignKey(AblationGrid, on_delete=models.CASCADE, related_name="cells")
    selection = models.CharField(max_length=20, choices=SelectionAxis.choices)
    reward = models.CharField(max_length=20, choices=RewardAxis.choices)
    curriculum = models.CharField(max_length=20, choices=CurriculumAxis.choices)
    seed = models.IntegerField(default=0, help_text="TrainConfig.seed of the cell's run.")
    selection_used = models.ForeignKey(
        Selection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="ablation_cells")
    eval_run = models.ForeignKey(
        EvalRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="ablation_cells"
    )
    # The held-out responses against the base policy's (win rates in both orders) and the
    # heuristic score; filled once the cell's and the base policy's evaluations succeeded.
    comparison = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["grid_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["grid", "selection", "reward", "curriculum", "seed"],
                name="uniq_ablation_cell_seed",
            )
        ]

    def __str__(self) -> str:
        return f"{self.grid_id}: {self.label}"

    @property
    def label(self) -> str:
        """The cell's arm: selection · reward · curriculum (the seeds of an arm share it)."""
        return f"{self.selection} · {self.reward} · {self.curriculum}"

    @property
    def seed_label(self) -> str:
        return f"{self.label} · seed {self.seed}"
