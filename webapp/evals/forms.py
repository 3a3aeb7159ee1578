"""Forms: a new evaluation, a long-input benchmark upload, the ablation grid."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings

from rl_engine.evaluation.longinput import EXTRACTION_LABELS, EXTRACTIONS
from rl_engine.evaluation.runner import EvalSettings
from rl_engine.training import TrainConfig
from webapp.evals.models import AblationCell, Benchmark, EvalRun, LongInputBenchmark
from webapp.evals.services.ablations import DEFAULT_CURRICULA, DEFAULT_SELECTIONS, REWARDS
from webapp.studio.forms import judge_fields
from webapp.studio.models import Checkpoint, Dataset, Instruction, Selection
from webapp.studio.paths import PathNotAllowed, check_model
from webapp.studio.spec_forms import refuse_pasted_keys

SPLITS = [*Instruction.Split.choices, ("", "every split")]
_DEFAULTS = EvalSettings("writingbench")
JUDGE_FIELDS = ("endpoint", "model", "structured_output", "extra_body")


class JudgeFields(forms.Form):
    """The judge: a declared endpoint by name (the deployment's default judge first)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judge = judge_fields(include=JUDGE_FIELDS)
        self.judge.add(self)
        self.judge_fields = self.judge.names

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self)
        spec = self.judge.clean(self)
        if spec is not None:
            cleaned["judge_spec"] = spec
        return cleaned

    def judge_spec(self) -> dict[str, Any]:
        return self.cleaned_data["judge_spec"].to_dict()


class EvalRunForm(JudgeFields):
    name = forms.CharField(required=False, max_length=200)
    benchmark = forms.ChoiceField(choices=Benchmark.choices)
    system_kind = forms.ChoiceField(choices=EvalRun.SystemKind.choices, label="System")
    checkpoint = forms.ModelChoiceField(
        queryset=Checkpoint.objects.filter(deleted=False)
        .select_related("run")
        .order_by("-created_at"),
        required=False,
        help_text="For a checkpoint system.",
    )
    base_model = forms.CharField(
        required=False,
        help_text="For a base-model system: a policy name or a local HF checkpoint path.",
    )
    reference_tier = forms.IntegerField(
        required=False, min_value=0, help_text="For a reference-tier system (0 = the weakest)."
    )
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), required=False)
    split = forms.ChoiceField(choices=SPLITS, initial=Instruction.Split.EVAL, required=False)
    long_input = forms.ModelChoiceField(
        queryset=LongInputBenchmark.objects.all(),
        required=False,
        label="Long-input benchmark file",
        help_text="For the long-input multiple-choice benchmark.",
    )
    baseline_tier = forms.IntegerField(
        required=False, min_value=0, help_text="Pairwise: play against this reference tier..."
    )
    baseline_run = forms.ModelChoiceField(
        queryset=EvalRun.objects.filter(status=EvalRun.Status.SUCCEEDED),
        required=False,
        help_text="...or against the responses of this evaluation.",
    )
    limit = forms.IntegerField(required=False, min_value=1, help_text="At most this many items.")
    max_new_tokens = forms.IntegerField(min_value=1, initial=_DEFAULTS.max_new_tokens)
    batch_size = forms.IntegerField(min_value=1, initial=_DEFAULTS.batch_size)
    temperature = forms.FloatField(min_value=0.0, initial=_DEFAULTS.temperature)
    iterations = forms.IntegerField(
        min_value=1, initial=1, help_text="Creative: pieces per prompt (needs temperature > 0)."
    )
    context_tokens = forms.IntegerField(
        min_value=64,
        initial=_DEFAULTS.context_tokens,
        help_text="Long input: the model's window; contexts are cut from the middle to fit.",
    )
    extraction = forms.ChoiceField(
        choices=[(e, EXTRACTION_LABELS[e]) for e in EXTRACTIONS],
        initial="official",
        required=False,
        label="Answer extraction",
        help_text="Long input: the official extraction reproduces LongBench v2's pred.py; the "
        "lenient one is this project's variant and is labelled wherever its scores appear.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only splits that exist: those of the dataset given in the link, else of any dataset.
        instructions = Instruction.objects.all()
        dataset = self.initial.get("dataset")
        if dataset and str(dataset).isdigit():
            instructions = instructions.filter(dataset_id=int(dataset))
        present = set(instructions.values_list("split", flat=True).distinct())
        if not self.is_bound:  # a posted split is checked against its dataset in clean()
            self.fields["split"].choices = [
                (v, label) for v, label in SPLITS if v == "" or v in present
            ]
        self.fields["split"].initial = (
            Instruction.Split.EVAL if Instruction.Split.EVAL in present or not present else ""
        )
        self.fields["base_model"].initial = settings.WRITING_RL_POLICY

    def clean_base_model(self) -> str:
        value = self.cleaned_data.get("base_model") or ""
        try:
            return check_model(value, "base_model")
        except PathNotAllowed as exc:
            raise forms.ValidationError(exc.message) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        dataset, split = data.get("dataset"), data.get("split")
        if dataset is not None and split and data.get("benchmark") != Benchmark.LONGBENCH_V2:
            has = sorted(
                set(Instruction.objects.filter(dataset=dataset).values_list("split", flat=True))
            )
            if split not in has:
                self.add_error(
                    "split",
                    f"dataset {dataset.name!r} has no {split!r} split; it has "
                    f"{', '.join(has) or 'no instructions'} (or choose every split)",
                )
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data.get("name") or "",
            "benchmark": data["benchmark"],
            "system_kind": data["system_kind"],
            "checkpoint": data.get("checkpoint"),
            "base_model": data.get("base_model") or "",
            "reference_tier": data.get("reference_tier"),
            "dataset": data.get("dataset"),
            "split": data.get("split") or "",
            "long_input": data.get("long_input"),
            "baseline_tier": data.get("baseline_tier"),
            "baseline_run": data.get("baseline_run"),
            "limit": data.get("limit"),
            "settings": {
                "max_new_tokens": data["max_new_tokens"],
                "batch_size": data["batch_size"],
                "temperature": data["temperature"],
                "iterations": data["iterations"],
                "context_tokens": data["context_tokens"],
                "extraction": data.get("extraction") or "official",
            },
            "judge": self.judge_spec(),
        }


class LongInputUploadForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, help_text="Defaults to the file name.")
    file = forms.FileField(
        help_text="JSONL, one question per line: _id, context, question, choice_A..choice_D, "
        "answer (A-D), difficulty (easy/hard), length (short/medium/long), optional domain."
    )


class AblationForm(JudgeFields):
    name = forms.CharField(max_length=200)
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    selections = forms.MultipleChoiceField(
        choices=AblationCell.SelectionAxis.choices,
        initial=list(DEFAULT_SELECTIONS),
        widget=forms.CheckboxSelectMultiple,
    )
    rewards = forms.MultipleChoiceField(
        choices=AblationCell.RewardAxis.choices,
        initial=list(REWARDS),
        widget=forms.CheckboxSelectMultiple,
    )
    curricula = forms.MultipleChoiceField(
        choices=AblationCell.CurriculumAxis.choices,
        initial=list(DEFAULT_CURRICULA),
        widget=forms.CheckboxSelectMultiple,
    )
    design = forms.ChoiceField(
        choices=[
            ("product", "every combination of the ticked values"),
            ("one_factor", "one factor at a time from margin · pairwise · dynamic"),
        ],
        initial="product",
        required=False,
        label="Arms",
        help_text="One factor at a time is the paper's ablation: the method's arm, and each "
        "other ticked value of one axis with the other two at the method's.",
    )
    seeds = forms.CharField(
        required=False,
        label="Seeds per arm",
        help_text="Several seeds, e.g. '0 1 2': every arm is trained once per seed and the "
        "table reports the mean with a 95% t-interval over seeds. Empty: the seed below.",
    )
    margin_selection = forms.ModelChoiceField(
        queryset=Selection.objects.filter(strategy=Selection.Strategy.MARGIN),
        required=False,
        help_text="Its chosen instructions train the margin-aware cells.",
    )
    difficulty_selection = forms.ModelChoiceField(
        queryset=Selection.objects.filter(strategy=Selection.Strategy.DIFFICULTY),
        required=False,
        help_text="Its chosen instructions train the difficulty cells.",
    )
    random_selection = forms.ModelChoiceField(
        queryset=Selection.objects.filter(strategy=Selection.Strategy.RANDOM),
        required=False,
        help_text="Its chosen instructions train the random-selection cells.",
    )
    policy = forms.CharField(initial="smollm2-135m-instruct")
    algorithm = forms.ChoiceField(choices=[("grpo", "GRPO"), ("rloo", "RLOO")], initial="grpo")
    max_steps = forms.IntegerField(min_value=1, initial=20)
    prompts_per_step = forms.IntegerField(min_value=1, initial=2)
    num_generations = forms.IntegerField(min_value=2, initial=4)
    max_completion_tokens = forms.IntegerField(min_value=1, initial=128)
    learning_rate = forms.FloatField(min_value=0.0, initial=1e-6)
    seed = forms.IntegerField(initial=0)
    eval_benchmark = forms.ChoiceField(
        choices=[c for c in Benchmark.choices if c[0] != Benchmark.LONGBENCH_V2],
        initial=Benchmark.LONGBENCH_WRITE,
        label="Evaluate on",
    )
    eval_split = forms.ChoiceField(choices=SPLITS, initial=Instruction.Split.EVAL, required=False)
    eval_limit = forms.IntegerField(required=False, min_value=1)
    eval_max_new_tokens = forms.IntegerField(min_value=1, initial=256)
    eval_baseline_tier = forms.IntegerField(
        required=False, min_value=0, help_text="Pairwise evaluation: the baseline tier."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["policy"].initial = settings.WRITING_RL_POLICY
        help_texts = TrainConfig.help()
        for name in ("policy", "algorithm", "max_steps", "prompts_per_step", "num_generations",
                     "max_completion_tokens", "learning_rate", "seed"):  # fmt: skip
            self.fields[name].help_text = help_texts.get(name, "")

    def clean_seeds(self) -> list[int] | None:
        text = (self.cleaned_data.get("seeds") or "").replace(",", " ").split()
        if not text:
            return None
        try:
            seeds = [int(part) for part in text]
        except ValueError:
            raise forms.ValidationError("give whole numbers, e.g. '0 1 2'") from None
        if len(set(seeds)) != len(seeds):
            raise forms.ValidationError("a seed is listed twice")
        return seeds

    def base_config(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "policy": data["policy"],
            "algorithm": data["algorithm"],
            "max_steps": data["max_steps"],
            "prompts_per_step": data["prompts_per_step"],
            "num_generations": data["num_generations"],
            "max_completion_tokens": data["max_completion_tokens"],
            "learning_rate": data["learning_rate"],
            "seed": data["seed"],
            "checkpoint_every": max(1, data["max_steps"] // 4),
            "judge": self.judge_spec(),
        }

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "dataset": data["dataset"],
            "base_config": self.base_config(),
            "selections": data["selections"],
            "rewards": data["rewards"],
            "curricula": data["curricula"],
            "design": data.get("design") or "product",
            "seeds": data.get("seeds"),
            "margin_selection": data.get("margin_selection"),
            "difficulty_selection": data.get("difficulty_selection"),
            "random_selection": data.get("random_selection"),
            "eval_benchmark": data["eval_benchmark"],
            "eval_split": data.get("eval_split") or "",
            "eval_settings": {"max_new_tokens": data["eval_max_new_tokens"]},
            "eval_judge": self.judge_spec(),
            "eval_limit": data.get("eval_limit"),
            "eval_baseline_tier": data.get("eval_baseline_tier"),
        }


class RunEvaluationForm(JudgeFields):
    """Evaluate a training run: which benchmarks, which checkpoints (only those still on disk
    are offered), whether to add the base policy, and the items."""

    benchmarks = forms.MultipleChoiceField(
        choices=Benchmark.choices, widget=forms.CheckboxSelectMultiple
    )
    checkpoints = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Checkpoints still on disk; the ones evaluated are kept by the rotation.",
    )  # fmt: skip
    include_base = forms.BooleanField(
        required=False, initial=True, label="Also evaluate the base policy (step 0)"
    )
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), required=False)
    split = forms.ChoiceField(choices=SPLITS, required=False)
    long_input = forms.ModelChoiceField(
        queryset=LongInputBenchmark.objects.all(), required=False,
        label="Long-input benchmark file",
    )  # fmt: skip
    baseline_tier = forms.IntegerField(
        required=False, min_value=0, help_text="Pairwise: the reference tier played against."
    )
    limit = forms.IntegerField(required=False, min_value=1, help_text="At most this many items.")
    max_new_tokens = forms.IntegerField(min_value=1, initial=_DEFAULTS.max_new_tokens)

    def __init__(self, *args: Any, run: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from webapp.evals.run_evaluations import available_checkpoints

        self.run = run
        steps = [c.step for c in available_checkpoints(run)]
        self.fields["checkpoints"].choices = [(s, f"step {s}") for s in steps]
        self.fields["checkpoints"].initial = steps
        self.fields["dataset"].initial = run.dataset_id
        splits = set(
            Instruction.objects.filter(dataset_id=run.dataset_id)
            .values_list("split", flat=True)
            .distinct()
        )
        self.fields["split"].choices = [
            (value, label) for value, label in SPLITS if value == "" or value in splits
        ]
        self.fields["split"].initial = (
            Instruction.Split.EVAL if Instruction.Split.EVAL in splits else ""
        )

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "run": self.run,
            "benchmarks": data["benchmarks"],
            "checkpoints": data.get("checkpoints") or [],
            "include_base": bool(data.get("include_base")),
            "dataset": data.get("dataset"),
            "split": data.get("split") or "",
            "long_input": data.get("long_input"),
            "baseline_tier": data.get("baseline_tier"),
            "limit": data.get("limit"),
            "settings": {"max_new_tokens": data["max_new_tokens"]},
            "judge": self.judge_spec(),
        }
