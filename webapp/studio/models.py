"""The data model of the studio: datasets, tiered references, runs and their curriculum.

A training sample is an :class:`Instruction`; inside a run its engine-side ``sample_id`` is
``str(instruction.pk)``. References carry a ``tier``: 0 is the weakest, tiers ascend in
quality and are what the dynamic reference scheduler climbs.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source_format = models.CharField(max_length=40, blank=True)
    source_filename = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class Instruction(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "train"
        EVAL = "eval", "eval"
        TEST = "test", "test"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="instructions")
    external_id = models.CharField(
        max_length=200, help_text="The sample's id in the imported file, unique per dataset."
    )
    prompt = models.TextField()
    criteria = models.JSONField(
        null=True, blank=True, help_text="Per-query criteria (e.g. a WritingBench checklist)."
    )
    required_words = models.PositiveIntegerField(null=True, blank=True)
    domain = models.CharField(max_length=200, blank=True)
    subdomain = models.CharField(max_length=200, blank=True)
    split = models.CharField(max_length=10, choices=Split.choices, default=Split.TRAIN)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["dataset_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="uniq_instruction_id")
        ]
        indexes = [models.Index(fields=["dataset", "split"])]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.external_id}"


class Reference(models.Model):
    """A reference text for an instruction; ``tier`` orders references by quality."""

    class Source(models.TextChoices):
        IMPORTED = "imported", "imported"
        GENERATED = "generated", "generated"
        MANUAL = "manual", "added by hand"

    instruction = models.ForeignKey(
        Instruction, on_delete=models.CASCADE, related_name="references"
    )
    writer = models.CharField(max_length=200)
    text = models.TextField()
    score = models.FloatField(null=True, blank=True)
    tier = models.PositiveIntegerField(null=True, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.IMPORTED)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    metadata = models.JSONField(default=dict, blank=True)
    # What writing it cost (a generated reference; 0 when imported, added by hand or written
    # by a local model): requests sent (retries included) and the tokens the endpoint reported.
    attempts = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    # What its latest pointwise grade cost (0 until graded by an endpoint).
    grade_attempts = models.PositiveIntegerField(default=0)
    grade_prompt_tokens = models.PositiveIntegerField(default=0)
    grade_completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instruction_id", "tier", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["instruction", "tier"],
                condition=Q(tier__isnull=False),
                name="uniq_reference_tier",
            )
        ]

    def __str__(self) -> str:
        return f"{self.instruction_id} tier {self.tier} ({self.writer})"


class PolicyResponse(models.Model):
    """The policy's own response to an instruction, with its pointwise score (for selection)."""

    instruction = models.ForeignKey(
        Instruction, on_delete=models.CASCADE, related_name="policy_responses"
    )
    policy = models.CharField(max_length=300)
    text = models.TextField()
    score = models.FloatField(null=True, blank=True)
    # The pipeline job that wrote it: a resumed job skips exactly what it wrote itself.
    job = models.ForeignKey(
        "PipelineJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What its pointwise grade cost: requests (retries included) and reported tokens.
    grade_attempts = models.PositiveIntegerField(default=0)
    grade_prompt_tokens = models.PositiveIntegerField(default=0)
    grade_completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instruction_id", "-created_at"]

    def __str__(self) -> str:
        return f"{self.policy} on {self.instruction_id}"


class Selection(models.Model):
    """One margin-aware (or baseline) data-selection pass over a dataset."""

    class Strategy(models.TextChoices):
        MARGIN = "margin", "margin-aware"
        DIFFICULTY = "difficulty", "difficulty"
        RANDOM = "random", "random"
        FULL = "full", "full"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="selections")
    strategy = models.CharField(max_length=20, choices=Strategy.choices)
    k = models.PositiveIntegerField(null=True, blank=True)
    policy = models.CharField(max_length=300)
    seed = models.IntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.strategy} selection {self.pk} (k={self.k})"


class SelectionEntry(models.Model):
    selection = models.ForeignKey(Selection, on_delete=models.CASCADE, related_name="entries")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE)
    learning_potential = models.FloatField(null=True, blank=True)
    policy_score = models.FloatField(null=True, blank=True)
    chosen = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["selection", "instruction"], name="uniq_selection_entry"
            )
        ]

    def __str__(self) -> str:
        chosen = "chosen" if self.chosen else "not chosen"
        return f"{self.selection_id}:{self.instruction_id} ({chosen})"


class WorkerLease(models.Model):
    """The fields with which a worker holds a background job's row (a run, a pipeline job, an
    evaluation, a campaign's generation, a judge run) and a lost worker is noticed: a held row
    without a heartbeat for ``WRITING_RL_RUN_STALE_S`` may be claimed again
    (``webapp.studio.services.leases``)."""

    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Which worker holds the row, and how many times it was claimed (> 1 = resumed after a
    # worker was lost).
    claimed_by = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the stale-task sweep last sent the task again after its worker was lost.
    requeued_at = models.DateTimeField(null=True, blank=True)
    # The fencing token: bumped by every claim (and takeover); a worker's writes are
    # conditional on the epoch its claim got, so a worker that was taken over writes nothing.
    epoch = models.PositiveIntegerField(default=0)
    # When the row's task was last sent successfully (empty: never, e.g. the broker was down).
    enqueued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def worker_lost(self) -> bool:
        """Running, but its worker has sent no heartbeat for ``WRITING_RL_RUN_STALE_S``."""
        if getattr(self, "status", None) != "running":
            return False
        if self.heartbeat_at is None:
            return True
        stale_after = timedelta(seconds=settings.WRITING_RL_RUN_STALE_S)
        return self.heartbeat_at < timezone.now() - stale_after


class Run(WorkerLease):
    """A training (or evaluation) run; ``config`` is ``TrainConfig.to_dict()``."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="runs")
    selection = models.ForeignKey(
        Selection, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    config = models.JSONField(default=dict)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0, help_text="0..1")
    current_step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # While a step is held because the judge gives no verdicts: JudgeWait's fields (step,
    # waited_s, budget_s, retries, invalid_rate, last_error) and "since"; {} otherwise.
    judge_wait = models.JSONField(default=dict, blank=True)
    cancel_requested = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    task_id = models.CharField(max_length=100, blank=True)
    output_dir = models.CharField(max_length=1000, blank=True)
    group = models.CharField(
        max_length=200, blank=True, help_text="Links the runs of one ablation grid."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("use_studio", "Can use the studio: datasets, runs, evaluations and campaigns"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def judge_endpoint(self) -> str:
        """The judge's endpoint name (``kind`` for a config stored before the registry)."""
        judge = (self.config or {}).get("judge") or {}
        if not isinstance(judge, dict):
            return ""
        return str(judge.get("endpoint") or judge.get("kind") or "heuristic")

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class CurriculumState(models.Model):
    """Where one sample stands on its reference ladder within one run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="curriculum")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE)
    tier = models.PositiveIntegerField(default=0)
    num_tiers = models.PositiveIntegerField()
    mastered = models.BooleanField(default=False)
    last_step = models.IntegerField(default=-1)
    # The step of the latest move up (or of reaching mastery); -1 = never moved. Lets the
    # store tell from one conditional UPDATE whether that outcome made a transition, and the
    # dashboard find samples stuck on a tier.
    last_move_step = models.IntegerField(default=-1)
    attempts = models.PositiveIntegerField(default=0, help_text="Steps recorded for the sample.")
    wins = models.PositiveIntegerField(default=0)
    ties = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "instruction"], name="uniq_curriculum_state")
        ]
        indexes = [models.Index(fields=["run", "tier"]), models.Index(fields=["run", "mastered"])]

    def __str__(self) -> str:
        return f"run {self.run_id} / {self.instruction_id}: tier {self.tier}/{self.num_tiers}"


class CurriculumTransition(models.Model):
    class Cause(models.TextChoices):
        TRAINING = "training", "training"
        MANUAL = "manual", "manual intervention"
        RESUME = "resume", "rolled back on resume"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="transitions")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE)
    step = models.IntegerField()
    from_tier = models.PositiveIntegerField()
    to_tier = models.PositiveIntegerField()
    mastered = models.BooleanField(default=False)
    cause = models.CharField(max_length=20, choices=Cause.choices, default=Cause.TRAINING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "instruction_id", "step", "id"]
        indexes = [models.Index(fields=["run", "instruction", "step"])]

    def __str__(self) -> str:
        move = f"{self.from_tier}->{self.to_tier}"
        return f"run {self.run_id} / {self.instruction_id} @ {self.step}: {move}"


class Judgment(models.Model):
    """One judge call on one rollout against one reference, at one step of a run.

    ``verdict`` is the rollout's outcome (combined over both orders with the reward position
    "both", so both rows of a rollout carry it); ``order_verdict`` the judge's letter in this
    call, with ``position`` where the policy's text was shown. Written only through
    ``webapp.studio.services.judgments.judgments_store``, for every backend.
    """

    class Verdict(models.TextChoices):
        WIN = "win", "policy won"
        TIE = "tie", "tie"
        LOSS = "loss", "policy lost"
        INVALID = "invalid", "invalid"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="judgments")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE)
    step = models.IntegerField()
    rollout = models.TextField()
    reference_tier = models.PositiveIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=10, choices=Verdict.choices)
    order_verdict = models.CharField(
        max_length=10, blank=True, help_text="The judge's letter in this call: A, B, TIE, INVALID."
    )
    reward = models.FloatField(null=True, blank=True)
    position = models.CharField(max_length=20, blank=True)
    rationale = models.TextField(blank=True)
    judge = models.CharField(max_length=300, blank=True)
    latency_s = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "step", "id"]
        indexes = [
            models.Index(fields=["run", "instruction", "step"]),
            models.Index(fields=["run", "step"]),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} / {self.instruction_id} @ {self.step}: {self.verdict}"


class StepMetric(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="step_metrics")
    step = models.PositiveIntegerField()
    metrics = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="uniq_step_metric")]

    def __str__(self) -> str:
        return f"run {self.run_id} step {self.step}"


class Checkpoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="checkpoints")
    step = models.PositiveIntegerField()
    path = models.CharField(max_length=1000)
    metadata = models.JSONField(default=dict, blank=True)
    deleted = models.BooleanField(
        default=False, help_text="Removed from disk by the run's checkpoint rotation."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "step"]
        constraints = [models.UniqueConstraint(fields=["run", "step"], name="uniq_checkpoint")]

    def __str__(self) -> str:
        return f"run {self.run_id} checkpoint {self.step}"

    @staticmethod
    def pinned_q() -> models.Q:
        """Checkpoints in use: by an evaluation or a human-evaluation system (rotation keeps
        them)."""
        return models.Q(eval_runs__isnull=False) | models.Q(system__isnull=False)


class AuditLog(models.Model):
    """A manual intervention: who changed what, when, and the values before and after."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=100)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.CASCADE)
    instruction = models.ForeignKey(Instruction, null=True, blank=True, on_delete=models.CASCADE)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor_id} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def change(self) -> str:
        """What changed, in words: "tier 2 → 0" for a tier move, "new tier 3 by <writer>" for
        an added reference; other actions show their details' ``from``/``to`` if any."""
        details = self.details or {}
        before, after = details.get("before") or {}, details.get("after") or {}
        if "tier" in before and "tier" in after:
            return f"tier {before['tier']} → {after['tier']}"
        if self.action == "reference.add" and "tier" in details:
            return f"new tier {details['tier']} by {details.get('writer', '?')}"
        if "from" in details and "to" in details:
            return f"{details['from']} → {details['to']}"
        return ""


class PipelineJob(WorkerLease):
    """One pipeline task (generate references, score, select, order tiers) and its progress.

    Celery tasks write ``progress`` (0..1) and ``message`` as they go, so the dashboard can
    show a long generation without asking the broker.
    """

    class Kind(models.TextChoices):
        GENERATE_REFERENCES = "generate_references", "generate references"
        SCORE_REFERENCES = "score_references", "score references"
        POLICY_RESPONSES = "policy_responses", "generate and score policy responses"
        SELECT = "select", "select instructions"
        ORDER_TIERS = "order_tiers", "order reference tiers"

    class Status(models.TextChoices):
        # Waits for the jobs it depends on (``depends_on``) to end; never sent before.
        WAITING = "waiting", "waiting"
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        # Ended, having done part of what it was asked (e.g. some grades failed).
        PARTIAL = "partial", "partial"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    kind = models.CharField(max_length=40, choices=Kind.choices)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.FloatField(default=0.0, help_text="0..1")
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    usage = models.JSONField(
        default=dict,
        blank=True,
        help_text="What the job's model calls cost, per endpoint: {endpoint: {calls, attempts, "
        "prompt_tokens, completion_tokens}} — failed calls included, added batch by batch.",
    )
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    task_id = models.CharField(max_length=100, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The jobs whose output this one works on: it waits until all of them ended
    # (``services.pipeline``: ``job_create(depends_on=...)``, ``dependents_release``).
    depends_on = models.ManyToManyField(
        "self", symmetrical=False, related_name="dependents", blank=True
    )
    # Jobs created together by one action ("prepare references") share a group and its label.
    group = models.UUIDField(null=True, blank=True, db_index=True)
    group_label = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.dataset_id} ({self.status})"

    FINAL = ("succeeded", "partial", "failed", "cancelled")

    @property
    def waiting_for(self) -> list[PipelineJob]:
        """The inputs that have not ended yet (uses a prefetched ``depends_on``)."""
        return [job for job in self.depends_on.all() if job.status not in self.FINAL]


class JudgeCheck(models.Model):
    """One judge check's report (``rl_engine.judging.check.JudgeCheckReport.to_dict()``):
    a judge asked about reference pairs of known order, in both orders. Every check is kept —
    those run before a run starts (``run`` set) and those asked for from the dataset page or
    ``manage.py judge_check``."""

    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.SET_NULL, related_name="judge_checks"
    )
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="judge_checks"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    judge = models.CharField(max_length=300, help_text="The judge's name (endpoint and model).")
    judge_spec = models.JSONField(default=dict, blank=True)
    passed = models.BooleanField(default=False)
    parse_rate = models.FloatField(null=True, blank=True)
    position_consistency = models.FloatField(null=True, blank=True)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, help_text="Why the check could not run at all.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        outcome = "passed" if self.passed else "failed"
        return f"judge check {self.pk} of {self.judge} ({outcome})"
