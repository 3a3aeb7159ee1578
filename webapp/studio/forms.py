"""Forms of the studio pages.

The new-run form is generated from :class:`rl_engine.training.TrainConfig`: one form field per
dataclass field (the judge spec flattened into ``judge_<name>`` fields), each with the
field's ``metadata["help"]`` as its help text. Validation is the config's own: the form builds
a ``TrainConfig`` and puts the engine's message on the field it names.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from typing import Any

from django import forms

from rl_engine.judging import JudgeSpec
from rl_engine.training import config as config_module
from rl_engine.training.config import TrainConfig
from webapp.studio.importers import FORMATS as IMPORT_FORMATS
from webapp.studio.models import Dataset, Selection
from webapp.studio.paths import PathNotAllowed, check_model, check_train_config

FORMAT_LABELS = {
    "auto": "detect from the file",
    "jsonl": "our JSONL",
    "writingbench": "WritingBench",
    "longbench_write": "LongBench-Write",
    "verl": "the authors' verl parquet",
}
DATASET_FORMATS = [(fmt, FORMAT_LABELS.get(fmt, fmt)) for fmt in IMPORT_FORMATS]

# Fields whose values come from a fixed list, and where the engine keeps that list.
_CHOICE_CONSTANTS = {
    "backend": "BACKENDS",
    "algorithm": "ALGORITHMS",
    "reward_position": "POSITIONS",
    "curriculum": "CURRICULA",
    "device": "DEVICES",
    "dtype": "DTYPES",
    "use_vllm": "VLLM_MODES",
}
# JudgeSpec has no help metadata of its own (yet); these explain its fields on the form.
JUDGE_HELP = {
    "kind": "'heuristic' (offline, deterministic, not an LLM), 'openai' (any OpenAI-compatible "
    "endpoint: vLLM, OpenAI, DashScope) or 'local' (a transformers model).",
    "model": "The endpoint's model name, or a local model path. Required for openai and local.",
    "base_url": "Base URL of the OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1.",
    "api_key_env": "Name of the environment variable that holds the API key. The worker reads "
    "the key from its environment; it is never stored in the run nor shown here.",
    "max_concurrency": "Judge calls in flight at once.",
    "timeout_s": "Seconds before one judge call is abandoned and retried.",
    "max_retries": "Retries of a failed call (network error, 5xx) before the verdict is INVALID.",
    "cache_path": "File of the judgment cache (identical comparisons are judged once); empty = "
    "no cache.",
    "max_reasks": "Times the judge is asked again when its answer has no [[A]]/[[B]]/[[C]].",
    "temperature": "Sampling temperature of the judge.",
    "max_tokens": "Maximum tokens of the judge's answer (rationale and verdict).",
    "tie_margin": "HeuristicJudge only: score difference below which the verdict is a tie.",
    "batch_size": "Local judge only: comparisons per forward batch.",
    "hedge": "Endpoint judges: send a second copy of a call that is slower than 95% of recent "
    "calls when a slot is idle, and use the first answer (shortens a step's tail; the extra "
    "calls may be billed).",
}
_ERROR_FIELD = re.compile(r"\b(TrainConfig|JudgeSpec)\.([a-z_]+)")
JUDGE_PREFIX = "judge_"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(form: forms.Form, field: str) -> str:
    """A variable *name*; anything else may be a pasted key: refused, and blanked in the bound
    data so the page shown again does not echo it."""
    value = form.cleaned_data.get(field) or ""
    if value and not _ENV_NAME.fullmatch(value):
        form.data = form.data.copy()
        form.data[form.add_prefix(field)] = ""
        raise forms.ValidationError(
            "Give the name of an environment variable (letters, digits, underscores), not the "
            "key itself; the value you typed was discarded."
        )
    return value


def _allowed_model(value: str, field: str) -> str:
    """A model name or a checkpoint under the model roots (webapp.studio.paths)."""
    try:
        return check_model(value, field)
    except PathNotAllowed as exc:
        raise forms.ValidationError(exc.message) from None


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _form_field(
    name: str, annotation: Any, default: Any, help_text: str, choices: tuple[str, ...] | None
) -> forms.Field:
    """A Django form field for one dataclass field, initialised with its default."""
    base, optional = _unwrap_optional(annotation)
    common: dict[str, Any] = {"help_text": help_text, "label": name}
    if choices is None and base is not dict and typing.get_origin(base) is typing.Literal:
        choices = tuple(typing.get_args(base))
    if choices:
        return forms.ChoiceField(
            choices=[(c, c) for c in choices], initial=default, required=True, **common
        )
    if base is bool:
        return forms.BooleanField(initial=default, required=False, **common)
    if base is int:
        return forms.IntegerField(initial=default, required=not optional, **common)
    if base is float:
        return forms.FloatField(initial=default, required=not optional, **common)
    if base is dict or typing.get_origin(base) is dict:
        return JSONObjectField(initial=json.dumps(default or {}), required=False, **common)
    return forms.CharField(
        initial=default if default is not None else "",
        required=not optional and default not in ("", None),
        strip=True,
        **common,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


class JSONObjectField(forms.CharField):
    """A JSON object typed into a text box, e.g. ``{"length": 0.5}``."""

    widget = forms.TextInput
    MAX_CHARS = 10_000

    def to_python(self, value: Any) -> dict[str, Any]:
        text = super().to_python(value)
        if not text:
            return {}
        if len(text) > self.MAX_CHARS:
            raise forms.ValidationError(f"At most {self.MAX_CHARS:,} characters of JSON.")
        try:
            parsed = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (column {exc.colno})."
            ) from None
        except RecursionError:
            raise forms.ValidationError("Nested too deeply; give a flat JSON object.") from None
        except ValueError as exc:  # a 5000-digit number, NaN
            raise forms.ValidationError(f"Not valid JSON here: {exc}") from None
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Give a JSON object, e.g. {"length": 0.5}.')
        return parsed


def _defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


class RunForm(forms.Form):
    """Name, dataset, optional selection, and every ``TrainConfig`` field.

    ``cleaned_data["config"]`` holds the validated ``TrainConfig`` after ``is_valid()``.
    """

    name = forms.CharField(max_length=200, help_text="A short name to find the run again.")
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all(), help_text="Training data.")
    selection = forms.ModelChoiceField(
        queryset=Selection.objects.select_related("dataset"),
        required=False,
        help_text="Train only on the instructions this selection chose (empty = every "
        "train-split instruction of the dataset).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hints = typing.get_type_hints(TrainConfig)
        defaults = _defaults(TrainConfig)
        self.config_fields: list[str] = []
        self.judge_fields: list[str] = []
        for f in dataclasses.fields(TrainConfig):
            if f.name == "judge":
                continue
            constant = _CHOICE_CONSTANTS.get(f.name)
            choices = getattr(config_module, constant, None) if constant else None
            self.fields[f.name] = _form_field(
                f.name, hints[f.name], defaults.get(f.name), f.metadata.get("help", ""), choices
            )
            self.config_fields.append(f.name)
        # run_create gives every run its own directory; the field is shown, not editable.
        output_dir = self.fields["output_dir"]
        output_dir.disabled = True
        output_dir.required = False
        output_dir.initial = "(set by the studio: <runs dir>/run-<id>)"
        output_dir.help_text += " The studio gives every run its own directory."
        judge_help = dict(fields_help(TrainConfig))["judge"]
        judge_hints = typing.get_type_hints(JudgeSpec)
        judge_defaults = {**_defaults(JudgeSpec), **defaults["judge"].to_dict()}
        for f in dataclasses.fields(JudgeSpec):
            help_text = f.metadata.get("help") or JUDGE_HELP.get(f.name, "")
            field = _form_field(
                f.name,
                judge_hints[f.name],
                judge_defaults.get(f.name),
                help_text,
                ("openai", "local", "heuristic") if f.name == "kind" else None,
            )
            field.label = f"judge.{f.name}"
            self.fields[JUDGE_PREFIX + f.name] = field
            self.judge_fields.append(JUDGE_PREFIX + f.name)
        self.judge_help = judge_help

    def clean_judge_api_key_env(self) -> str:
        return _env_name(self, "judge_api_key_env")

    def clean_selection(self) -> Selection | None:
        selection = self.cleaned_data.get("selection")
        dataset = self.cleaned_data.get("dataset")
        if selection is not None and dataset is not None and selection.dataset_id != dataset.pk:
            raise forms.ValidationError("This selection belongs to another dataset.")
        return selection

    def api_key_status(self) -> dict[str, Any]:
        """Whether the named key variable is set here; the value itself never leaves."""
        name = self["judge_api_key_env"].value() or ""
        return {"name": name, "is_set": bool(name and os.environ.get(name))}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if any(name in self.errors for name in self.config_fields + self.judge_fields):
            return cleaned
        values: dict[str, Any] = {name: cleaned.get(name) for name in self.config_fields}
        # A placeholder that passes validation; run_create replaces it with the run's directory.
        values["output_dir"] = TrainConfig.__dataclass_fields__["output_dir"].default
        judge = {name[len(JUDGE_PREFIX) :]: cleaned.get(name) for name in self.judge_fields}
        for name, value in list(values.items()) + list(judge.items()):
            if value == "" and self._optional(name):
                (values if name in values else judge)[name] = None
        try:
            values["judge"] = JudgeSpec(**judge)
            cleaned["config"] = TrainConfig(**values)
        except (ValueError, TypeError) as exc:
            self._attach(str(exc))
            return cleaned
        try:
            check_train_config(cleaned["config"])
        except PathNotAllowed as exc:
            del cleaned["config"]
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned

    def _optional(self, name: str) -> bool:
        field = self.fields.get(name) or self.fields.get(JUDGE_PREFIX + name)
        return field is not None and not field.required

    def _attach(self, message: str) -> None:
        match = _ERROR_FIELD.search(message)
        if match:
            owner, field = match.groups()
            key = JUDGE_PREFIX + field if owner == "JudgeSpec" else field
            if key in self.fields:
                self.add_error(key, message)
                return
        self.add_error(None, message)


def fields_help(cls: type) -> list[tuple[str, str]]:
    return [(f.name, f.metadata.get("help", "")) for f in dataclasses.fields(cls)]


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


class _EndpointFields(forms.Form):
    """Who grades: the offline heuristic, or a model behind an OpenAI-compatible endpoint."""

    scorer_kind = forms.ChoiceField(
        choices=[("heuristic", "heuristic (offline, not an LLM)"), ("openai", "openai endpoint")],
        initial="heuristic",
        label="Grader",
        help_text="Grades each text 1-10. 'heuristic' scores length and repetition offline; "
        "'openai' asks the model below (vLLM, OpenAI, DashScope).",
    )
    scorer_model = forms.CharField(max_length=300, required=False, label="Grader model")
    scorer_base_url = forms.CharField(
        max_length=500, required=False, label="Grader base URL", help_text="e.g. http://gpu:8001/v1"
    )
    scorer_api_key_env = forms.CharField(
        max_length=100,
        required=False,
        initial="OPENAI_API_KEY",
        label="Grader API key variable",
        help_text="The worker reads the key from this environment variable; it is never stored.",
    )

    def clean_scorer_api_key_env(self) -> str:
        return _env_name(self, "scorer_api_key_env")

    def scorer(self) -> dict[str, Any] | None:
        data = self.cleaned_data
        if data["scorer_kind"] == "heuristic":
            return None
        return {
            "kind": "openai",
            "model": data["scorer_model"],
            "base_url": data["scorer_base_url"],
            "api_key_env": data["scorer_api_key_env"] or "OPENAI_API_KEY",
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("scorer_kind") == "openai" and not self.errors:
            try:
                JudgeSpec.from_dict(self.scorer() or {})
            except ValueError as exc:
                self.add_error("scorer_model", str(exc))
        return cleaned


class GenerateReferencesForm(forms.Form):
    """One writer writes a reference for every instruction (of a split)."""

    kind = "generate_references"
    name = forms.CharField(
        max_length=200, help_text="Labels the references, e.g. 'qwen-72b' or 'smollm2-careful'."
    )
    writer_kind = forms.ChoiceField(
        choices=[("local", "local model (GPU queue)"), ("openai", "openai endpoint")],
        initial="local",
        label="Writer",
    )
    model = forms.CharField(
        max_length=300,
        required=False,
        help_text="Local: a checkpoint directory or 'smollm2-135m-instruct'. Endpoint: its "
        "model name.",
    )
    base_url = forms.CharField(
        max_length=500, required=False, label="Base URL", help_text="Endpoint writers only."
    )
    api_key_env = forms.CharField(
        max_length=100,
        required=False,
        initial="OPENAI_API_KEY",
        label="API key variable",
        help_text="Endpoint writers: the environment variable that holds the key.",
    )
    max_new_tokens = forms.IntegerField(min_value=1, max_value=131_072, initial=1024)
    temperature = forms.FloatField(min_value=0.0, max_value=10.0, initial=0.7)
    plan_then_write = forms.BooleanField(
        required=False,
        help_text="For long targets: an outline with a word budget per section, then the "
        "sections, then joined.",
    )
    parallel_sections = forms.BooleanField(
        required=False, help_text="Write the sections at once instead of in sequence."
    )
    split = forms.ChoiceField(
        choices=[("", "every instruction"), ("train", "train only"), ("test", "test only")],
        required=False,
    )

    def clean_api_key_env(self) -> str:
        return _env_name(self, "api_key_env")

    def clean(self) -> dict[str, Any]:
        from rl_engine.writers import WriterSpec

        cleaned = super().clean()
        if self.errors:
            return cleaned
        spec = {
            "name": cleaned["name"],
            "kind": cleaned["writer_kind"],
            "model": cleaned["model"],
            "base_url": cleaned["base_url"],
            "api_key_env": cleaned["api_key_env"] or "OPENAI_API_KEY",
            "max_new_tokens": cleaned["max_new_tokens"],
            "temperature": cleaned["temperature"],
            "plan_then_write": cleaned["plan_then_write"],
            "parallel_sections": cleaned["parallel_sections"],
        }
        if spec["kind"] == "local" and spec["model"]:
            try:
                check_model(spec["model"], "model")
            except PathNotAllowed as exc:
                self.add_error("model", exc.message)
                return cleaned
        if spec["kind"] == "openai" and not (spec["model"] and spec["base_url"]):
            self.add_error("model", "An endpoint writer needs its model name and base URL.")
            return cleaned
        try:
            cleaned["writer"] = WriterSpec.from_dict(spec).to_dict()
        except ValueError as exc:
            self.add_error(None, str(exc))
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
