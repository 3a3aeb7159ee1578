"""Forms: the vote, a new campaign, a judge run."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from webapp.annotation.models import Vote
from webapp.annotation.services.campaigns import SystemSpec
from webapp.studio.forms import judge_fields
from webapp.studio.models import Checkpoint, Dataset, Instruction, Reference, Run
from webapp.studio.paths import PathNotAllowed, check_model
from webapp.studio.spec_forms import refuse_pasted_keys

VOTE_CHOICES = [
    (Vote.Choice.LEFT.value, "Left is better"),
    (Vote.Choice.RIGHT.value, "Right is better"),
    (Vote.Choice.TIE.value, "Tie"),
    (Vote.Choice.BOTH_BAD.value, "Both bad"),
    (Vote.Choice.SKIP.value, "Skip"),
]


class VoteForm(forms.Form):
    choice = forms.ChoiceField(choices=VOTE_CHOICES, widget=forms.RadioSelect)
    rationale = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    skip_reason = forms.CharField(required=False, max_length=1000)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("choice") == Vote.Choice.SKIP and not (data.get("skip_reason") or "").strip():
            self.add_error("skip_reason", "Say why you skip this item.")
        return data


def parse_imported_outputs(text: str, filename: str, dataset: Dataset) -> dict[int, str]:
    """``{"instruction_id": <external id>, "response": <text>}`` per line, keyed by the
    instruction's primary key. Errors name the file, the line and the field."""
    by_external = dict(dataset.instructions.values_list("external_id", "pk"))
    outputs: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{filename}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"{where}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise forms.ValidationError(f"{where}: expected a JSON object")
        for name in ("instruction_id", "response"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise forms.ValidationError(f"{where}: field {name!r} must be a non-empty string")
        pk = by_external.get(row["instruction_id"])
        if pk is None:
            raise forms.ValidationError(
                f"{where}: field 'instruction_id': {row['instruction_id']!r} is not an "
                f"instruction of dataset {dataset.name!r}"
            )
        outputs[pk] = row["response"]
    if not outputs:
        raise forms.ValidationError(f"{filename}: no outputs found")
    return outputs


class CampaignForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="Internal name, for researchers only (annotators never see it)."
    )
    public_title = forms.CharField(
        max_length=200,
        required=False,
        help_text="What annotators see; it must not reveal the systems. Empty = "
        "'Comparison <number>'.",
    )
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    split = forms.ChoiceField(
        choices=[("", "any split"), *Instruction.Split.choices], required=False
    )
    external_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Instruction ids, one per line or comma separated; empty = all (up to limit).",
    )
    limit = forms.IntegerField(min_value=1, initial=20, required=False)
    reference_tiers = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    checkpoints = forms.ModelMultipleChoiceField(
        queryset=Checkpoint.objects.filter(deleted=False).select_related("run"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    runs = forms.ModelMultipleChoiceField(
        queryset=Run.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each run's latest checkpoint (e.g. the Reference-SFT baseline).",
    )
    base_policy = forms.CharField(
        required=False,
        help_text="A base policy name or checkpoint path to include; empty = none.",
    )
    imported_label = forms.CharField(required=False, max_length=200)
    imported_file = forms.FileField(
        required=False,
        help_text='JSONL, one {"instruction_id": ..., "response": ...} per line.',
    )
    overlap = forms.IntegerField(min_value=1, max_value=20, initial=2)
    lease_minutes = forms.IntegerField(min_value=1, max_value=24 * 60, initial=30)
    max_new_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=256)
    guidelines = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6}), help_text="Markdown."
    )
    annotators = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tiers = sorted(
            {
                t
                for t in Reference.objects.values_list("tier", flat=True).distinct()
                if t is not None
            }
        )
        self.fields["reference_tiers"].choices = [(t, f"tier {t}") for t in tiers]
        self.fields["base_policy"].initial = settings.WRITING_RL_POLICY

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        dataset = data.get("dataset")
        if dataset is None:
            return data
        instructions = dataset.instructions.order_by("pk")
        if data.get("split"):
            instructions = instructions.filter(split=data["split"])
        raw_ids = [
            part.strip()
            for part in (data.get("external_ids") or "").replace(",", "\n").splitlines()
            if part.strip()
        ]
        if raw_ids:
            found = {i.external_id: i for i in instructions.filter(external_id__in=raw_ids)}
            unknown = [i for i in raw_ids if i not in found]
            if unknown:
                self.add_error(
                    "external_ids", f"unknown instruction id(s): {', '.join(unknown[:5])}"
                )
            picked = [found[i] for i in raw_ids if i in found]
        else:
            picked = list(instructions[: data.get("limit") or 20])
        if not picked:
            self.add_error("dataset", "no instruction matches; pick another dataset or split")
        data["instruction_list"] = picked
        specs = [
            SystemSpec(kind="reference", reference_tier=t)
            for t in data.get("reference_tiers") or []
        ]
        specs += [
            SystemSpec(kind="checkpoint", checkpoint=c) for c in data.get("checkpoints") or []
        ]
        specs += [SystemSpec(kind="run", run=r) for r in data.get("runs") or []]
        if (data.get("base_policy") or "").strip():
            try:
                policy = check_model(data["base_policy"].strip(), "base_policy")
            except PathNotAllowed as exc:
                self.add_error("base_policy", exc.message)
            else:
                specs.append(SystemSpec(kind="base_policy", policy=policy))
        upload = data.get("imported_file")
        if upload is not None:
            label = (data.get("imported_label") or "").strip() or upload.name
            try:
                text = upload.read().decode("utf-8")
                outputs = parse_imported_outputs(text, upload.name, dataset)
            except UnicodeDecodeError:
                self.add_error("imported_file", f"{upload.name}: not UTF-8 text")
            except forms.ValidationError as exc:
                self.add_error("imported_file", exc)
            else:
                specs.append(SystemSpec(kind="imported", label=label, outputs=outputs))
        if len(specs) < 2:
            raise forms.ValidationError("Pick at least two systems to compare.")
        data["system_specs"] = specs
        return data


class JudgeRunForm(forms.Form):
    """An LLM judge (or the heuristic) on a campaign's pairs: a declared endpoint by name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.judge = judge_fields(
            kinds=("heuristic", "openai"),
            include=("endpoint", "model", "structured_output", "extra_body"),
            prefix="",
        )
        self.judge.add(self)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refuse_pasted_keys(self)
        spec = self.judge.clean(self)
        if spec is not None:
            cleaned["spec"] = spec
        return cleaned

    def spec(self) -> dict[str, Any]:
        return self.cleaned_data["spec"].to_dict()


class PreferenceExportForm(forms.Form):
    """Options of the preference export: keep items out whose majority is weakly supported."""

    min_votes = forms.IntegerField(
        min_value=1,
        max_value=1000,
        initial=2,
        label="Minimum votes per item",
        help_text="Counted votes (skips excluded) an item needs to be exported.",
    )
    min_agreement_percent = forms.IntegerField(
        min_value=0,
        max_value=100,
        initial=67,
        label="Minimum agreement (%)",
        help_text="Share of an item's votes that must agree with its majority.",
    )
