"""Human pairwise evaluation: campaigns, the systems they compare, items, leases and votes.

A :class:`Campaign` compares :class:`System` outputs on a set of instructions. Each unordered
pair of systems on each instruction is one :class:`Item`; its two sides are stored in a
canonical order (``system_a``, ``system_b``). An annotator works on an :class:`Assignment`, a
lease on one item that also records which side was shown on the left. A :class:`Vote` is the
verdict, stored both as what the annotator pressed (left / right) and undone into the
canonical order (``a`` / ``b``), so counting never depends on the screen layout.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from webapp.studio.models import Checkpoint, Instruction, Run, WorkerLease


class Campaign(WorkerLease):
    class Status(models.TextChoices):
        GENERATING = "generating", "generating missing outputs"
        OPEN = "open", "open"
        CLOSED = "closed", "closed"
        FAILED = "failed", "failed"

    name = models.CharField(
        max_length=200, unique=True, help_text="Internal: researchers only (it may unblind)."
    )
    public_title = models.CharField(
        max_length=200,
        blank=True,
        help_text="What annotators see instead of the name; empty = 'Comparison <id>'.",
    )
    guidelines = models.TextField(blank=True, help_text="Markdown, shown to annotators.")
    overlap = models.PositiveIntegerField(default=2, help_text="Annotations each item needs.")
    lease_seconds = models.PositiveIntegerField(
        default=30 * 60, help_text="How long an annotator holds an item before it is re-offered."
    )
    max_new_tokens = models.PositiveIntegerField(
        default=256, help_text="Length limit when outputs are generated for the campaign."
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.GENERATING, db_index=True
    )
    error = models.TextField(blank=True)
    instructions = models.ManyToManyField(Instruction, related_name="campaigns")
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="annotation_campaigns", blank=True
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    task_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def annotator_title(self) -> str:
        """The title annotators see: never the internal name, which may name the systems."""
        return self.public_title or f"Comparison {self.pk}"


class System(models.Model):
    """One contestant: where its text for an instruction comes from."""

    class Kind(models.TextChoices):
        CHECKPOINT = "checkpoint", "run checkpoint"
        REFERENCE = "reference", "reference tier"
        RUN = "run", "run (latest checkpoint, e.g. Reference-SFT)"
        BASE_POLICY = "base_policy", "base policy"
        IMPORTED = "imported", "imported outputs"

    GENERATED_KINDS = (Kind.CHECKPOINT, Kind.RUN, Kind.BASE_POLICY)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="systems")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    label = models.CharField(max_length=200)
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.PROTECT)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.PROTECT)
    reference_tier = models.PositiveIntegerField(null=True, blank=True)
    policy = models.CharField(
        max_length=1000, blank=True, help_text="Base policy name or checkpoint path used."
    )

    class Meta:
        ordering = ["campaign_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "label"], name="uniq_system_label")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def is_generated(self) -> bool:
        return self.kind in self.GENERATED_KINDS


class SystemOutput(models.Model):
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="outputs")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["system", "instruction"], name="uniq_system_output")
        ]

    def __str__(self) -> str:
        return f"{self.system_id} on {self.instruction_id}"


class Item(models.Model):
    """One comparison: an instruction and two systems' outputs, in canonical order."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    instruction = models.ForeignKey(Instruction, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(help_text="Order in the campaign's queue.")
    output_a = models.ForeignKey(SystemOutput, on_delete=models.CASCADE, related_name="+")
    output_b = models.ForeignKey(SystemOutput, on_delete=models.CASCADE, related_name="+")
    system_a = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    system_b = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    # Counted votes (skips excluded); the item leaves the queue once it reaches the overlap.
    votes_done = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(default=False)
    # Bumped by every claim: the optimistic lock of databases without SKIP LOCKED.
    claim_version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["campaign_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "instruction", "system_a", "system_b"], name="uniq_item_pair"
            ),
            models.UniqueConstraint(fields=["campaign", "position"], name="uniq_item_position"),
        ]
        indexes = [models.Index(fields=["campaign", "complete", "position"])]

    def __str__(self) -> str:
        return f"item {self.position} of campaign {self.campaign_id}"


class Assignment(models.Model):
    """An annotator's lease on an item, and the side layout they were shown."""

    class Status(models.TextChoices):
        LEASED = "leased", "leased"
        VOTED = "voted", "voted"
        SKIPPED = "skipped", "skipped"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_assignments"
    )
    # True: system_a's text was shown on the left.
    a_on_left = models.BooleanField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.LEASED)
    leased_until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="uniq_assignment")
        ]
        indexes = [
            models.Index(fields=["annotator", "status"]),
            models.Index(fields=["item", "status", "leased_until"]),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} for {self.annotator_id} ({self.status})"


class Vote(models.Model):
    """One annotator's verdict on one item (at most one: the unique constraint guarantees it)."""

    class Choice(models.TextChoices):
        LEFT = "left", "left is better"
        RIGHT = "right", "right is better"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"
        SKIP = "skip", "skipped"

    class Outcome(models.TextChoices):
        A = "a", "system A better"
        B = "b", "system B better"
        TIE = "tie", "tie"
        BOTH_BAD = "both_bad", "both bad"
        SKIP = "skip", "skipped"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="votes")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotation_votes"
    )
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="vote")
    choice = models.CharField(max_length=10, choices=Choice.choices)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    # The system shown on the left, recorded again so a vote is readable on its own.
    left_system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="+")
    winner = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    rationale = models.TextField(blank=True)
    skip_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "annotator"], name="uniq_vote_per_annotator"),
            models.CheckConstraint(
                condition=~Q(choice="skip") | ~Q(skip_reason=""), name="skip_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} on item {self.item_id}: {self.outcome}"

    @property
    def counted(self) -> bool:
        return self.outcome != self.Outcome.SKIP


class JudgeRun(WorkerLease):
    """The LLM judge run on every item of a campaign, in both orders."""

    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="judge_runs")
    judge_name = models.CharField(max_length=300)
    spec = models.JSONField(help_text="JudgeSpec.to_dict(); API keys are never stored.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    task_id = models.CharField(max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.judge_name} on campaign {self.campaign_id} ({self.status})"

    @property
    def judge_endpoint(self) -> str:
        """The judge's endpoint name (``kind`` for a spec stored before the registry)."""
        spec = self.spec if isinstance(self.spec, dict) else {}
        return str(spec.get("endpoint") or spec.get("kind") or "heuristic")


class JudgeVote(models.Model):
    """One judge verdict on one item in one order (``ab``: system A's text shown first)."""

    class Order(models.TextChoices):
        AB = "ab", "A first"
        BA = "ba", "B first"

    # System A's outcome (rl_engine.outcomes.Outcome) as the canonical label of ``outcome``.
    LABELS = {"win": "a", "loss": "b", "tie": "tie", "invalid": ""}
    # Where system A's text was shown in each order.
    A_POSITION = {"ab": "first", "ba": "second"}

    judge_run = models.ForeignKey(JudgeRun, on_delete=models.CASCADE, related_name="votes")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judge_votes")
    order = models.CharField(max_length=2, choices=Order.choices)
    verdict = models.CharField(max_length=10, help_text="A, B, TIE or INVALID as the judge saw it.")
    # Undone into the canonical order: a, b, tie; empty for an INVALID verdict.
    outcome = models.CharField(max_length=10, blank=True)
    rationale = models.TextField(blank=True)
    error = models.TextField(blank=True)
    latency_s = models.FloatField(null=True, blank=True)
    # What the call cost: requests (re-asks and retries included) and reported tokens.
    attempts = models.PositiveIntegerField(default=1)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["judge_run_id", "item_id", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["judge_run", "item", "order"], name="uniq_judge_vote_order"
            )
        ]

    def __str__(self) -> str:
        return f"{self.judge_run_id}/{self.item_id}/{self.order}: {self.verdict}"
