"""Form fields generated from the engine's dataclasses, and endpoint choice for every form.

Each dataclass field becomes one form field: its type decides the widget, its
``metadata["help"]`` the help text and its ``metadata["choices"]`` (when present) a select.
No side tables: what a form shows is what the dataclass says.

Endpoints are chosen by NAME among those the deployment declares
(:func:`rl_engine.judging.endpoints.default_registry`); a form never has a field for a key
variable, and a base URL field only where the deployment allows custom hosts. Text that
looks like an API key is refused, and blanked in the form shown again, wherever it is typed.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django import forms
from django.utils.text import capfirst

from rl_engine.judging.endpoints import (
    CUSTOM_ENDPOINT,
    EndpointRegistry,
    EndpointSpec,
    default_registry,
    looks_like_secret,
)
from webapp.studio.paths import resolve_checked

__all__ = [
    "PASTED_KEY_MESSAGE",
    "JSONObjectField",
    "SpecFields",
    "dataclass_defaults",
    "form_field",
    "refuse_pasted_keys",
]

PASTED_KEY_MESSAGE = (
    "This looks like an API key. Keys are never typed into the studio: the deployment keeps "
    "them with its endpoints. The value was discarded."
)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


class JSONObjectField(forms.CharField):
    """A JSON object typed into a text box, e.g. ``{"length": 0.5}``: at most ``MAX_CHARS``,
    finite numbers only, not nested without end."""

    widget = forms.TextInput
    MAX_CHARS = 10_000

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value)
        return value

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
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


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def dataclass_defaults(cls: type) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def form_field(f: dataclasses.Field[Any], annotation: Any, default: Any) -> forms.Field:
    """A Django form field for dataclass field ``f``, initialised with ``default``."""
    base, optional = _unwrap_optional(annotation)
    common: dict[str, Any] = {"help_text": f.metadata.get("help", ""), "label": f.name}
    choices = f.metadata.get("choices")
    if choices is None and typing.get_origin(base) is typing.Literal:
        choices = tuple(typing.get_args(base))
    if choices:
        return forms.ChoiceField(
            choices=[(c, c or "(the endpoint's)") for c in choices],
            initial=default,
            required=bool(all(choices)),
            **common,
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


def refuse_pasted_keys(form: forms.Form, names: Iterable[str] | None = None) -> None:
    """Refuse every text field of ``form`` (or those ``names``) whose value looks like an API
    key: an error on the field, and the value blanked in the bound data so the page shown
    again does not echo it."""
    for name in names if names is not None else list(form.fields):
        field = form.fields.get(name)
        if not isinstance(field, forms.CharField):
            continue
        raw = form.data.get(form.add_prefix(name)) if form.is_bound else None
        if raw and looks_like_secret(str(raw)):
            form.data = form.data.copy()
            form.data[form.add_prefix(name)] = ""
            form.cleaned_data.pop(name, None)
            if name not in form.errors:
                form.add_error(name, PASTED_KEY_MESSAGE)


class SpecFields:
    """One endpoint spec's fields on a form, named ``<prefix><field>``.

    ``kinds``: the endpoint kinds the form accepts (a grader cannot be a local model, say).
    ``include``: the spec fields shown (default: all); the others keep their defaults.
    ``initial``: starting values (the deployment's default judge for a new run).
    Call :meth:`add` in the form's ``__init__`` and :meth:`clean` in its ``clean``.
    """

    def __init__(
        self,
        spec_cls: type[EndpointSpec],
        *,
        prefix: str,
        kinds: Sequence[str] = ("openai", "local", "heuristic"),
        include: Sequence[str] | None = None,
        initial: Mapping[str, Any] | None = None,
        label: str = "",
        registry: EndpointRegistry | None = None,
    ) -> None:
        self.spec_cls = spec_cls
        self.prefix = prefix
        self.kinds = tuple(kinds)
        self.include = include
        self.initial = dict(initial or {})
        self.label = label
        self.registry = registry or default_registry()
        self.names: list[str] = []

    def endpoint_names(self) -> list[str]:
        return self.registry.names(self.kinds)

    def add(self, form: forms.Form) -> None:
        hints = typing.get_type_hints(self.spec_cls)
        defaults = {**dataclass_defaults(self.spec_cls), **self.initial}
        for f in dataclasses.fields(self.spec_cls):
            if self.include is not None and f.name not in self.include:
                continue
            if f.name == "base_url" and not self.registry.custom_hosts:
                continue  # only where the deployment allows custom hosts
            field = form_field(f, hints[f.name], defaults.get(f.name))
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                field.required = True
            if f.name == "endpoint":
                field = forms.ChoiceField(
                    choices=[(name, self._describe(name)) for name in self.endpoint_names()],
                    initial=defaults.get("endpoint")
                    if defaults.get("endpoint") in self.endpoint_names()
                    else self.endpoint_names()[0],
                    help_text=f.metadata.get("help", ""),
                )
            elif f.name == "model":
                field.help_text = self._model_help(field.help_text)
            words = f.name.replace("_", " ")
            field.label = f"{self.label}{words}" if self.label else capfirst(words)
            form.fields[self.prefix + f.name] = field
            self.names.append(self.prefix + f.name)

    def _describe(self, name: str) -> str:
        endpoint = self.registry.get(name)
        if endpoint.kind == "heuristic":
            return f"{name} (offline rules, not an LLM)"
        if endpoint.kind == "local":
            return f"{name} (a local model)"
        models = f": {', '.join(endpoint.models)}" if endpoint.models else ""
        price = f", {endpoint.price_label()}" if endpoint.priced else ""
        return f"{name} ({endpoint.kind}{models}{price})"

    def _model_help(self, text: str) -> str:
        listed = [
            f"{name}: {', '.join(e.models)}"
            for name in self.endpoint_names()
            if (e := self.registry.get(name)).models
        ]
        return f"{text} Listed models — {'; '.join(listed)}." if listed else text

    def values(self, form: forms.Form) -> dict[str, Any]:
        cleaned = form.cleaned_data
        values: dict[str, Any] = {}
        for name in self.names:
            value = cleaned.get(name)
            field = form.fields[name]
            if (
                value in ("", None)
                and not field.required
                and not isinstance(field, forms.ChoiceField | JSONObjectField | forms.BooleanField)
            ):
                hints = typing.get_type_hints(self.spec_cls)
                value = None if _unwrap_optional(hints[name[len(self.prefix) :]])[1] else ""
            values[name[len(self.prefix) :]] = value
        return values

    def clean(
        self, form: forms.Form, extra: Mapping[str, Any] | None = None
    ) -> EndpointSpec | None:
        """The spec the form describes, checked against the registry now (endpoint, model,
        custom URL); errors go on the field they name. None when invalid."""
        refuse_pasted_keys(form, self.names)
        if any(name in form.errors for name in self.names):
            return None
        values = {**self.values(form), **(extra or {})}
        try:
            spec = self.spec_cls(**values)
            # The same checked resolver the workers use: a declared endpoint, one of its
            # models, a local model under the model roots, a cache under the runs directory.
            resolved = resolve_checked(spec, self.prefix.rstrip("_") or "endpoint", self.registry)
        except (TypeError, ValueError) as exc:
            self._attach(form, str(exc))
            return None
        if resolved.kind not in self.kinds:
            form.add_error(self.prefix + "endpoint", f"A {resolved.kind} endpoint cannot do this.")
            return None
        return spec

    def _attach(self, form: forms.Form, message: str) -> None:
        for field in ("model", "base_url", "extra_body", "structured_output", "endpoint"):
            if field in message and self.prefix + field in form.fields:
                form.add_error(self.prefix + field, message)
                return
        for name in self.names:
            if f".{name[len(self.prefix) :]} " in message:
                form.add_error(name, message)
                return
        form.add_error(None, message)

    def endpoint_summary(self) -> list[dict[str, Any]]:
        """What the page may show about the endpoints: names, kinds, models, whether the
        deployment gives them a key — never the key nor its variable."""
        return [
            self.registry.get(name).public()
            for name in self.endpoint_names()
            if name != CUSTOM_ENDPOINT
        ]
