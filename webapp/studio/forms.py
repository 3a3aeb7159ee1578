"""Forms of the studio pages.

The new-run form is generated from :class:`rl_engine.training.TrainConfig`: one form field per
dataclass field (the judge spec flattened into ``judge_<name>`` fields), each with the
field's ``metadata["help"]`` as its help text. Validation is the config's own: the form builds
a ``TrainConfig`` and puts the engine's message on the field it names.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.urls import reverse

from rl_engine.judging import JudgeSpec
from rl_engine.judging.endpoints import default_registry
from rl_engine.training.config import TrainConfig
from rl_engine.writers import WriterSpec
from webapp.studio.importers import FORMATS as IMPORT_FORMATS
from webapp.studio.models import Dataset, Run, Selection
from webapp.studio.paths import ConfigRefused, PathNotAllowed, check_model, check_train_config
from webapp.studio.run_presets import preset_choices
from webapp.studio.spec_forms import (
    SpecFields,
    dataclass_defaults,
    form_field,
    refuse_pasted_keys,
)

FORMAT_LABELS = {
    "auto": "detect from the file",
    "jsonl": "our JSONL",
    "writingbench": "WritingBench",
    "longbench_write": "LongBench-Write",
    "verl": "the authors' verl parquet",
}
DATASET_FORMATS = [(fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in IMPORT_FORMATS]

_ERROR_FIELD = re.compile(r"\bTrainConfig\.([a-z_]+)")
JUDGE_PREFIX = "judge_"


def _allowed_model(value: str, field: str) -> str:
    """A model name or a checkpoint under the model roots (webapp.studio.paths)."""
    try:
        return check_model(value, field)
    except PathNotAllowed as exc:
        raise forms.ValidationError(exc.message) from None


def judge_fields(
    *,
    prefix: str = JUDGE_PREFIX,
    kinds: tuple[str, ...] = ("openai", "local", "heuristic"),
    include: tuple[str, ...] | None = None,
    label: str = "",
) -> SpecFields:
    """The judge's fields, starting from the deployment's default judge (``default_judge``
    in ``WRITING_RL_ENDPOINTS``, or the older ``WRITING_RL_JUDGE_KIND/BASE_URL/MODEL``)."""
    registry = default_registry()
    initial = {"endpoint": registry.default_judge, "model": registry.default_model}
    return SpecFields(
        JudgeSpec, prefix=prefix, kinds=kinds, include=include, initial=initial, label=label
    )


# The new-run form's Basic section: what most runs change. Every other TrainConfig field goes
# to Advanced (so a field added to TrainConfig later lands there), except the read-only ones.
BASIC_FIELDS = (
    "policy", "algorithm", "backend", "reward_kind", "curriculum", "num_generations",
    "prompts_per_step", "max_completion_tokens", "learning_rate", "kl_beta", "max_steps",
    "device",
)  # fmt: skip
BASIC_JUDGE_FIELDS = ("judge_endpoint", "judge_model")
# Fields the researcher does not set: shown as text with why, never as (disabled) inputs.
READ_ONLY_FIELDS = {
    "output_dir": "Set by the studio: every run gets its own directory under the runs "
    "directory (<runs dir>/run-<id>-<task>/), with checkpoint-<step>/ and final/ in it.",
    "logging_dir": "Set by the studio: where report_to writes (TensorBoard events, offline "
    "W&B runs), <run dir>/tensorboard/ or <run dir>/wandb/; none when report_to is none.",
}
LABELS = {
    "policy": "Policy model",
    "backend": "Training backend",
    "reward_kind": "Reward",
    "num_generations": "Group size (rollouts per prompt)",
    "prompts_per_step": "Prompts per step",
    "max_completion_tokens": "Max tokens per rollout",
    "kl_beta": "KL coefficient",
    "top_p": "Top-p",
    "use_vllm": "Use vLLM",
    "vllm_server_url": "vLLM server URL",
    "dtype": "Weights dtype",
    "judge_endpoint": "Judge endpoint",
    "judge_model": "Judge model",
    "min_wins": "Wins to move up a tier",
    "judge_check_pairs": "Judge check: pairs",
    "judge_check_min_parse_rate": "Judge check: minimum parse rate",
    "judge_check_min_consistency": "Judge check: minimum consistency",
    "judge_check_override": "Train even if the judge check fails",
    "judge_max_invalid_rate": "Judge: maximum invalid share per step",
    "judge_outage_budget_s": "Judge outage budget (seconds)",
}
_CONFIG_NAME = re.compile(r"\b(TrainConfig|JudgeSpec)\.([a-z_]+)")
_PLAIN_WORDS = (
    (re.compile(r"must be an integer >= (-?\d+)"), r"must be a whole number of at least \1"),
    (
        re.compile(r"must be an integer in \[(\d+), (\d+)\]"),
        r"must be a whole number from \1 to \2",
    ),
    (re.compile(r"must be a share in \[0, 1\]"), "must be a share from 0 to 1"),
    (re.compile(r"must be > 0"), "must be above 0"),
    (re.compile(r"must be >= 0"), "must be 0 or more"),
    (re.compile(r"must be in \(0, 1\]"), "must be above 0 and at most 1"),
    (re.compile(r"\bfor a (?=[aeiou])"), "for an "),
)


def field_label(name: str) -> str:
    """What the page calls a config field (``max_steps`` -> "Max steps")."""
    return LABELS.get(name) or name.replace("_", " ").capitalize()


def plain_message(message: str) -> str:
    """An engine message in the page's words: ``TrainConfig.max_steps must be an integer
    >= 1; got 0`` -> ``Max steps must be a whole number of at least 1; got 0``."""

    def label(match: re.Match[str]) -> str:
        prefix = "judge_" if match.group(1) == "JudgeSpec" else ""
        return field_label(prefix + match.group(2))

    text = _CONFIG_NAME.sub(label, message)
    for pattern, replacement in _PLAIN_WORDS:
        text = pattern.sub(replacement, text)
    return text[:1].upper() + text[1:]


def config_initial(config: dict[str, Any]) -> dict[str, Any]:
    """A stored ``TrainConfig.to_dict()`` as the form's initial values (judge flattened into
    ``judge_<name>``; read-only and unknown fields left out)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    initial = {
        name: value
        for name, value in config.items()
        if name in known and name != "judge" and name not in READ_ONLY_FIELDS
    }
    judge = config.get("judge")
    if isinstance(judge, dict):
        initial.update({JUDGE_PREFIX + name: value for name, value in judge.items()})
    return initial


def initial_from_data(form: forms.Form, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values a posted form holds, as initial values of a fresh (unbound) form: how the
    form is filled in again after a preset or a clone, without showing errors."""
    return {
        name: field.widget.value_from_datadict(data, {}, form.add_prefix(name))
        for name, field in form.fields.items()
    }


def run_clone_initial(run: Run) -> dict[str, Any]:
    """Every field of the form from ``run``: its name (marked a copy), data and config."""
    return {
        "name": f"{run.name} (copy)"[:200],
        "dataset": run.dataset_id,
        "selection": run.selection_id or "",
        **config_initial(run.config or {}),
    }


class RunForm(forms.Form):
    """Name, dataset, optional selection, and every ``TrainConfig`` field, in a Basic and an
    Advanced section; read-only fields (``READ_ONLY_FIELDS``) are text, not inputs.

    ``cleaned_data["config"]`` holds the validated ``TrainConfig`` after ``is_valid()``. All
    errors come at once: the config is validated again after each error with that field
    at its default, so a second and third mistake are reported on the same submit.
    """

    name = forms.CharField(max_length=200, help_text="A short name to find the run again.")
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), help_text="Training data.")
    selection = forms.ModelChoiceField(
        queryset=Selection.objects.select_related("dataset"),
        required=False,
        help_text="Train only on the instructions this selection chose (empty = every "
        "train-split instruction of the dataset). Lists the chosen dataset's selections.",
    )

    preset = forms.ChoiceField(
        choices=preset_choices,
        required=False,
        label="Start from a preset",
        help_text="Fills the training settings; the name, data and judge stay as they are.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hints = typing.get_type_hints(TrainConfig)
        defaults = dataclass_defaults(TrainConfig)
        self.config_fields: list[str] = []
        for f in dataclasses.fields(TrainConfig):
            if f.name == "judge" or f.name in READ_ONLY_FIELDS:
                continue
            field = form_field(f, hints[f.name], defaults.get(f.name))
            field.label = field_label(f.name)
            self.fields[f.name] = field
            self.config_fields.append(f.name)
        self.fields["policy"].initial = settings.WRITING_RL_POLICY  # the deployment's default
        self.fields["policy"].widget.attrs["list"] = "policy-models"
        # htmx: a new dataset brings its selections; a preset fills the form in (POST).
        self.fields["dataset"].widget.attrs.update(
            {
                "hx-get": reverse("studio:run_new_selections"),
                "hx-trigger": "change",
                "hx-target": "#field-selection",
                "hx-swap": "outerHTML",
            }
        )
        self.fields["preset"].widget.attrs.update(
            {
                "hx-post": reverse("studio:run_new"),
                "hx-trigger": "change",
                "hx-vals": '{"apply_preset": "1"}',
                "hx-target": "#run-form",
                "hx-select": "#run-form",
                "hx-swap": "outerHTML",
            }
        )
        self.judge = judge_fields()
        self.judge.add(self)
        self.judge_fields = self.judge.names
        for name in self.judge_fields:
            self.fields[name].label = field_label(name)
        self.judge_help = TrainConfig.help()["judge"]
        self._filter_selections()

    # -- sections --------------------------------------------------------------------------

    def _bound(self, names: list[str]) -> list[forms.BoundField]:
        return [self[name] for name in names if name in self.fields]

    def basic_fields(self) -> list[forms.BoundField]:
        return self._bound([*BASIC_FIELDS, *BASIC_JUDGE_FIELDS])

    def advanced_names(self) -> list[str]:
        basic = {*BASIC_FIELDS, *BASIC_JUDGE_FIELDS}
        return [n for n in [*self.config_fields, *self.judge_fields] if n not in basic]

    def advanced_fields(self) -> list[forms.BoundField]:
        return self._bound(self.advanced_names())

    def advanced_has_errors(self) -> bool:
        return self.is_bound and any(name in self.errors for name in self.advanced_names())

    def read_only(self) -> list[dict[str, str]]:
        return [
            {"name": name, "label": field_label(name), "text": text}
            for name, text in READ_ONLY_FIELDS.items()
        ]

    def error_summary(self) -> list[dict[str, str]]:
        """Every field error, in page order, for the list at the top (each links its field)."""
        order = ["name", "dataset", "selection", *BASIC_FIELDS, *BASIC_JUDGE_FIELDS]
        order += [name for name in self.fields if name not in order]
        return [
            {"id": self[name].auto_id, "label": str(self[name].label), "message": error}
            for name in order
            if name in self.fields and name in self.errors
            for error in self.errors[name]
        ]

    # -- selections of the chosen dataset --------------------------------------------------

    def chosen_dataset_id(self) -> int | None:
        raw = self.data.get("dataset") if self.is_bound else self.initial.get("dataset")
        raw = getattr(raw, "pk", raw)
        try:
            return int(raw) if raw not in (None, "") else None
        except (TypeError, ValueError):
            return None

    def _filter_selections(self) -> None:
        """Offer only the chosen dataset's selections (validation still sees every one, so a
        selection of another dataset gets its own message rather than 'invalid choice')."""
        dataset_id = self.chosen_dataset_id()
        field = self.fields["selection"]
        shown = (
            Selection.objects.filter(dataset_id=dataset_id).select_related("dataset")
            if dataset_id is not None
            else Selection.objects.none()
        )
        empty = "(every train instruction)" if dataset_id is not None else "(choose a dataset)"
        field.widget.choices = [("", empty)] + [(s.pk, str(s)) for s in shown]

    def clean_selection(self) -> Selection | None:
        selection = self.cleaned_data.get("selection")
        dataset = self.cleaned_data.get("dataset")
        if selection is not None and dataset is not None and selection.dataset_id != dataset.pk:
            raise forms.ValidationError(
                f"This selection belongs to the dataset {selection.dataset.name!r}, not "
                f"{dataset.name!r}; choose one of {dataset.name!r}'s selections or none."
            )
        return selection

    def endpoints(self) -> list[dict[str, Any]]:
        """The endpoints the page lists (no key, no key variable)."""
        return self.judge.endpoint_summary()

    # -- validation ------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self, ["name", *self.config_fields])
        judge = self.judge.clean(self)
        defaults = dataclass_defaults(TrainConfig)
        values: dict[str, Any] = {}
        for name in self.config_fields:
            if name in self.errors:  # already reported: validate the rest with the default
                values[name] = defaults[name]
                continue
            value = cleaned.get(name)
            values[name] = None if value == "" and not self.fields[name].required else value
        # A placeholder that passes validation; run_create replaces it with the run's directory.
        values["output_dir"] = defaults["output_dir"]
        values["judge"] = judge if judge is not None else JudgeSpec(endpoint="heuristic")
        config = self._validate_all(values)
        if config is not None and judge is not None and not self.errors:
            try:
                check_train_config(config)
            except ConfigRefused as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            else:
                cleaned["config"] = config
        self._plain_errors()
        return cleaned

    def _validate_all(self, values: dict[str, Any]) -> TrainConfig | None:
        """Build the config; after each error, put the field it names back to its default
        and try again, so every mistake is reported at once. None when any was found."""
        defaults = dataclass_defaults(TrainConfig)
        reported: set[str] = set()
        failed = False
        for _ in range(len(values) + 1):
            try:
                config = TrainConfig(**values)
            except (ValueError, TypeError) as exc:
                failed = True
                message = str(exc)
                name = self._named_field(message)
                if name is None or name in reported:
                    self.add_error(None, message)
                    return None
                reported.add(name)
                if name not in self.errors:
                    self.add_error(name, message)
                values[name] = defaults[name]
            else:
                return None if failed else config
        return None

    def _named_field(self, message: str) -> str | None:
        for match in _ERROR_FIELD.finditer(message):
            if match.group(1) in self.config_fields:
                return match.group(1)
        return None

    def _plain_errors(self) -> None:
        for name, errors in list(self.errors.items()):
            self.errors[name] = self.error_class(
                [plain_message(str(message)) for message in errors],
                error_class="nonfield" if name == NON_FIELD_ERRORS else None,
                renderer=self.renderer,
            )


class DatasetUploadForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Unique name of the new dataset.")
    file = forms.FileField(
        help_text="JSONL (ours, WritingBench, LongBench-Write) or the authors' verl parquet."
    )
    format = forms.ChoiceField(choices=DATASET_FORMATS, initial="auto")
    split = forms.ChoiceField(
        choices=[("train", "train"), ("eval", "eval (held out)"), ("test", "test")],
        initial="train",
        required=False,
        help_text="Where records without a split of their own land (default train).",
    )
    eval_fraction = forms.FloatField(
        required=False, min_value=0.0, max_value=1.0, label="Or hold out a fraction",
        help_text="e.g. 0.2 sends a seeded 20% of the instructions to eval, the rest to train.",
    )  # fmt: skip
    seed = forms.IntegerField(initial=0, required=False, help_text="Seed of the held-out draw.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A dataset named {name!r} exists; choose another name.")
        return name


REASON_REQUIRED = "Say why: the reason is kept in the audit log with the change."


class SetTierForm(forms.Form):
    tier = forms.IntegerField(min_value=0, help_text="0 = the weakest reference.")
    reason = forms.CharField(
        max_length=500,
        help_text="Why (kept in the audit log).",
        error_messages={"required": REASON_REQUIRED},
    )


class AddReferenceForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        strip=False,
        help_text="Becomes the new strongest reference (one tier above the current top).",
    )
    writer = forms.CharField(max_length=200, help_text="Who or which model wrote it.")
    reason = forms.CharField(max_length=500, error_messages={"required": REASON_REQUIRED})
    # References belong to the dataset, not to the run: the researcher must say they mean it.
    shared = forms.BooleanField(
        error_messages={
            "required": "Tick the box: the reference is added to the shared dataset, so every "
            "run on it sees the new tier."
        }
    )


class SelectionForm(forms.Form):
    """Parameters of one selection pass (``services.selection.selection_create``)."""

    strategy = forms.ChoiceField(
        choices=Selection.Strategy.choices,
        initial=Selection.Strategy.MARGIN,
        help_text="margin-aware: learning potential = best reference score minus the policy's "
        "own score; difficulty: lowest policy score first; random; full: every instruction.",
    )
    k = forms.IntegerField(
        min_value=1, required=False, help_text="How many to choose (empty = all of them)."
    )
    policy = forms.CharField(
        max_length=300,
        help_text="The policy whose scored responses the potentials compare against.",
    )
    seed = forms.IntegerField(initial=0, help_text="Seed for the random strategy and ties.")


# -- pipeline jobs ---------------------------------------------------------------------------


SCORER_FIELDS = ("endpoint", "model", "structured_output", "extra_body")


class _EndpointFields(forms.Form):
    """Who grades: the offline heuristic, or a declared endpoint's model (by name)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.grader = SpecFields(
            JudgeSpec,
            prefix="scorer_",
            kinds=("heuristic", "openai"),
            include=SCORER_FIELDS,
            label="Grader ",
        )
        self.grader.add(self)
        self.fields["scorer_endpoint"].help_text = (
            "Grades each text 1-10: 'heuristic' scores length and repetition offline; an "
            "endpoint asks its model. " + self.fields["scorer_endpoint"].help_text
        )

    def scorer(self) -> dict[str, Any] | None:
        spec = self.cleaned_data.get("scorer_spec")
        return None if spec is None or spec.endpoint == "heuristic" else spec.to_dict()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self)
        spec = self.grader.clean(self)
        if spec is not None:
            cleaned["scorer_spec"] = spec
        return cleaned


WRITER_FIELDS = (
    "name", "endpoint", "model", "max_tokens", "temperature", "seed", "extra_body",
    "plan_then_write", "parallel_sections",
)  # fmt: skip


def writer_fields(form: forms.Form) -> SpecFields:
    """Add a writer's fields (local model or OpenAI-compatible endpoint) to ``form``."""
    writer = SpecFields(WriterSpec, prefix="", kinds=("local", "openai"), include=WRITER_FIELDS)
    writer.add(form)
    form.fields["model"].help_text = (
        "Local: a checkpoint directory or 'smollm2-135m-instruct'. "
        + form.fields["model"].help_text
    )
    return writer


class GenerateReferencesForm(forms.Form):
    """One writer writes a reference for every instruction (of a split)."""

    kind = "generate_references"
    split = forms.ChoiceField(
        choices=[("", "every instruction"), ("train", "train only"), ("test", "test only")],
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer = writer_fields(self)
        self.order_fields([*self.writer.names, "split"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self)
        spec = self.writer.clean(self)  # a local model is checked against the model roots
        if spec is not None:
            cleaned["writer"] = spec.to_dict()
        return cleaned

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"writers": [self.cleaned_data["writer"]]}
        if self.cleaned_data["split"]:
            params["split"] = self.cleaned_data["split"]
        return params


class ScoreReferencesForm(_EndpointFields):
    kind = "score_references"
    rescore = forms.BooleanField(
        required=False, help_text="Grade references that already have a score again."
    )

    def params(self) -> dict[str, Any]:
        return {"scorer": self.scorer(), "rescore": self.cleaned_data["rescore"]}


class PolicyResponsesForm(_EndpointFields):
    kind = "policy_responses"
    policy = forms.CharField(
        max_length=300,
        help_text="The policy to answer the train instructions (a checkpoint directory or a "
        "known name); its graded answers feed margin-aware selection.",
    )
    max_new_tokens = forms.IntegerField(min_value=1, max_value=131_072, initial=256)
    temperature = forms.FloatField(min_value=0.0, max_value=10.0, initial=0.7)

    def clean_policy(self) -> str:
        return _allowed_model(self.cleaned_data["policy"], "policy")

    def params(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "policy": data["policy"],
            "scorer": self.scorer(),
            "max_new_tokens": data["max_new_tokens"],
            "temperature": data["temperature"],
        }


class OrderTiersForm(forms.Form):
    kind = "order_tiers"

    def params(self) -> dict[str, Any]:
        return {}


PIPELINE_FORMS: dict[str, type[forms.Form]] = {
    form.kind: form  # type: ignore[attr-defined]
    for form in (GenerateReferencesForm, ScoreReferencesForm, PolicyResponsesForm, OrderTiersForm)
}


class PrepareReferencesForm(_EndpointFields):
    """ "Prepare references": write → grade → order tiers, optionally → select, as one chain
    of jobs on the first N instructions (``services.prepare.references_prepare``)."""

    split = forms.ChoiceField(
        choices=[("", "every instruction"), ("train", "train only"), ("test", "test only")],
        required=False,
    )
    limit = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        required=False,
        label="First N instructions",
        help_text="Only the first N instructions (by id, in the split) go through every step "
        "(empty = all of them).",
    )
    strategy = forms.ChoiceField(
        choices=[("", "no selection"), *Selection.Strategy.choices],
        required=False,
        label="Then select",
        help_text="margin and difficulty also answer with the policy (graded like the "
        "references) before selecting; train instructions only.",
    )
    k = forms.IntegerField(
        min_value=1, required=False, help_text="How many to choose (empty = all of them)."
    )
    policy = forms.CharField(
        max_length=300,
        required=False,
        help_text="The policy whose graded answers margin or difficulty selection compares.",
    )
    max_new_tokens = forms.IntegerField(
        min_value=1, max_value=131_072, initial=256, label="Policy answer tokens"
    )
    seed = forms.IntegerField(initial=0, help_text="Seed for the random strategy and ties.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer = writer_fields(self)
        self.order_fields(
            [*self.writer.names, *self.grader.names, "split", "limit", "strategy", "k", "policy"]
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        spec = self.writer.clean(self)
        if spec is not None and spec.endpoint == "local" and spec.model:
            try:
                check_model(spec.model, "model")
            except PathNotAllowed as exc:
                self.add_error("model", exc.message)
        if spec is not None:
            cleaned["writer"] = spec.to_dict()
        strategy = cleaned.get("strategy")
        if strategy and cleaned.get("split") == "test":
            self.add_error("split", "Selection picks train instructions: choose train or every.")
        if strategy in (Selection.Strategy.MARGIN, Selection.Strategy.DIFFICULTY):
            if not cleaned.get("policy"):
                self.add_error("policy", f"{strategy} selection needs the policy to answer.")
            else:
                try:
                    cleaned["policy"] = _allowed_model(cleaned["policy"], "policy")
                except forms.ValidationError as error:
                    self.add_error("policy", error)
        return cleaned

    def prepare_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "writer": data["writer"], "scorer": self.scorer(), "split": data["split"],
            "limit": data["limit"], "strategy": data["strategy"], "k": data["k"],
            "policy": data["policy"], "seed": data["seed"] or 0,
            "max_new_tokens": data["max_new_tokens"],
        }  # fmt: skip
