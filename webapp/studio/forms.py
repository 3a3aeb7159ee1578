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
from typing import Any

from django import forms

from rl_engine.judging import JudgeSpec
from rl_engine.judging.endpoints import default_registry
from rl_engine.training.config import TrainConfig
from rl_engine.writers import WriterSpec
from webapp.studio.importers import FORMATS as IMPORT_FORMATS
from webapp.studio.models import Dataset, Selection
from webapp.studio.paths import PathNotAllowed, check_model, check_train_config
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
        defaults = dataclass_defaults(TrainConfig)
        self.config_fields: list[str] = []
        for f in dataclasses.fields(TrainConfig):
            if f.name == "judge":
                continue
            self.fields[f.name] = form_field(f, hints[f.name], defaults.get(f.name))
            self.config_fields.append(f.name)
        # run_create gives every run its own directory; the field is shown, not editable.
        output_dir = self.fields["output_dir"]
        output_dir.disabled = True
        output_dir.required = False
        output_dir.initial = "(set by the studio: <runs dir>/run-<id>)"
        output_dir.help_text += " The studio gives every run its own directory."
        self.judge = judge_fields(label="judge.")
        self.judge.add(self)
        self.judge_fields = self.judge.names
        self.judge_help = TrainConfig.help()["judge"]

    def clean_selection(self) -> Selection | None:
        selection = self.cleaned_data.get("selection")
        dataset = self.cleaned_data.get("dataset")
        if selection is not None and dataset is not None and selection.dataset_id != dataset.pk:
            raise forms.ValidationError("This selection belongs to another dataset.")
        return selection

    def endpoints(self) -> list[dict[str, Any]]:
        """The endpoints the page lists (no key, no key variable)."""
        return self.judge.endpoint_summary()

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self, ["name", *self.config_fields])
        judge = self.judge.clean(self)
        if judge is None or any(name in self.errors for name in self.config_fields):
            return cleaned
        values: dict[str, Any] = {name: cleaned.get(name) for name in self.config_fields}
        # A placeholder that passes validation; run_create replaces it with the run's directory.
        values["output_dir"] = TrainConfig.__dataclass_fields__["output_dir"].default
        for name, value in list(values.items()):
            if value == "" and not self.fields[name].required:
                values[name] = None
        values["judge"] = judge
        try:
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

    def _attach(self, message: str) -> None:
        match = _ERROR_FIELD.search(message)
        if match and match.group(1) in self.fields:
            self.add_error(match.group(1), message)
            return
        self.add_error(None, message)


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


class GenerateReferencesForm(forms.Form):
    """One writer writes a reference for every instruction (of a split)."""

    kind = "generate_references"
    split = forms.ChoiceField(
        choices=[("", "every instruction"), ("train", "train only"), ("test", "test only")],
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.writer = SpecFields(
            WriterSpec, prefix="", kinds=("local", "openai"), include=WRITER_FIELDS
        )
        self.writer.add(self)
        self.fields["model"].help_text = (
            "Local: a checkpoint directory or 'smollm2-135m-instruct'. "
            + self.fields["model"].help_text
        )
        self.order_fields([*self.writer.names, "split"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self)
        spec = self.writer.clean(self)
        if spec is not None and spec.endpoint == "local" and spec.model:
            try:
                check_model(spec.model, "model")
            except PathNotAllowed as exc:
                self.add_error("model", exc.message)
                return cleaned
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
