"""Model endpoints: what the deployment declares, and how one use of an endpoint is described.

An :class:`Endpoint` is deployment configuration — a name, a kind, a base URL, the models it
serves, the *name* of the environment variable holding its key, an optional price and its
structured-output mode. The deployment lists them in ``WRITING_RL_ENDPOINTS`` (JSON in the
variable, or the path of a JSON or TOML file); ``heuristic`` and ``local`` always exist.

An :class:`EndpointSpec` is one use of an endpoint (a judge, a scorer, a writer): the endpoint's
NAME, a model among those it lists, and the call settings. Specs are what runs and jobs store;
they never hold a URL with a key nor a key variable. :meth:`EndpointRegistry.resolve` turns a
spec into the address, model and key at use time, so a stored spec edited to point elsewhere
reaches only what the deployment declared.

Every field of :class:`EndpointSpec` (and of the specs built on it) carries ``metadata["help"]``,
from which the web forms are generated.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tomllib
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "BUILTIN_ENDPOINTS",
    "ENDPOINTS_ENV",
    "ENDPOINT_KINDS",
    "STRUCTURED_OUTPUTS",
    "Endpoint",
    "EndpointRegistry",
    "EndpointSpec",
    "ResolvedEndpoint",
    "default_registry",
    "looks_like_secret",
    "parse_endpoints",
    "structured_body",
    "upgrade_stored_spec",
]

ENDPOINTS_ENV = "WRITING_RL_ENDPOINTS"
CUSTOM_HOSTS_ENV = "WRITING_RL_CUSTOM_ENDPOINT_HOSTS"
ENDPOINT_KINDS = ("openai", "local", "heuristic")
EndpointKind = Literal["openai", "local", "heuristic"]
STRUCTURED_OUTPUTS = ("none", "grammar", "guided_choice", "json_schema")
BUILTIN_ENDPOINTS = ("heuristic", "local")
PRICE_FIELDS = (
    "price_per_1k_tokens",
    "price_per_million_prompt_tokens",
    "price_per_million_completion_tokens",
)
CUSTOM_ENDPOINT = "custom"
"""The keyless endpoint whose base URL the spec gives; exists only when custom hosts are set."""
COMPAT_ENDPOINT = "judge"
"""The endpoint ``WRITING_RL_JUDGE_KIND=openai`` + ``WRITING_RL_JUDGE_BASE_URL`` declare."""

# Variables that hold the service's own secrets: never an endpoint's key, whoever asks.
PROTECTED_ENV = frozenset(
    {
        "SECRET_KEY",
        "DJANGO_SECRET_KEY",
        "WRITING_RL_INTERNAL_API_TOKEN",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "WRITING_RL_METRICS_TOKEN",
        "WRITING_RL_HEALTH_TOKEN",
    }
)
_NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What API keys look like (OpenAI, Anthropic, DashScope, HF, Google, bearer/JWT blobs).
_SECRET = re.compile(
    r"(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_\-]{20,}|"
    r"xox[abp]-[A-Za-z0-9\-]{10,}|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}|"
    r"(?:bearer|api[_-]?key|token)\s*[:=]\s*\S{8,})",
    re.IGNORECASE,
)
_RANDOM_BLOB = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


def looks_like_secret(value: Any) -> bool:
    """True when ``value`` (any JSON-safe value, searched recursively) contains something that
    looks like an API key or token: those are refused wherever a researcher types text that
    is stored or sent."""
    if isinstance(value, Mapping):
        return any(looks_like_secret(k) or looks_like_secret(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(looks_like_secret(v) for v in value)
    if not isinstance(value, str):
        return False
    if _SECRET.search(value):
        return True
    # A long unbroken run of letters and digits mixing cases and digits is a key, not a word
    # nor a model name (model names have few digits and dashes between words).
    for blob in _RANDOM_BLOB.findall(value):
        if "/" in blob and blob.count("/") > 2:
            continue  # a path
        kinds = sum(
            (
                any(c.islower() for c in blob),
                any(c.isupper() for c in blob),
                sum(c.isdigit() for c in blob) >= 6,
            )
        )
        if kinds == 3:
            return True
    return False


# -- structured output -------------------------------------------------------------------------

VERDICT_GRAMMAR = 'root ::= "[[" [ABC] "]]"\n'
GRADE_GRAMMAR = (
    'root ::= "{\\"score\\": " score ", \\"reason\\": \\"" reason "\\"}"\n'
    'score ::= "10" | [1-9]\n'
    'reason ::= [^"\\\\\\n]*\n'
)
VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "verdict": {"type": "string", "enum": ["A", "B", "C"]},
    },
    "required": ["reason", "verdict"],
    "additionalProperties": False,
}
GRADE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
VERDICT_CHOICES = ["[[A]]", "[[B]]", "[[C]]"]
Purpose = Literal["verdict", "grade", "text"]


def structured_body(mode: str, purpose: Purpose) -> dict[str, Any]:
    """The request-body fields that make an endpoint answer in the shape ``purpose`` needs:

    - ``grammar`` (llama.cpp server): a GBNF ``grammar`` — the verdict tag alone, or the JSON
      grade;
    - ``guided_choice`` (vLLM): ``guided_choice`` among the three tags, or ``guided_json``
      with the grade's schema;
    - ``json_schema`` (OpenAI-compatible ``response_format``): a JSON object with ``reason``
      and ``verdict`` (A, B or C), or the grade's schema;
    - ``none``: nothing; free text is parsed as usual.

    Free text (``purpose="text"``, writers) is never constrained.

    >>> structured_body("guided_choice", "verdict")
    {'guided_choice': ['[[A]]', '[[B]]', '[[C]]']}
    >>> structured_body("none", "grade")
    {}
    """
    if mode not in STRUCTURED_OUTPUTS:
        raise ValueError(
            f"structured_output must be one of {', '.join(STRUCTURED_OUTPUTS)}; got {mode!r}"
        )
    if mode == "none" or purpose == "text":
        return {}
    verdict = purpose == "verdict"
    if mode == "grammar":
        return {"grammar": VERDICT_GRAMMAR if verdict else GRADE_GRAMMAR}
    if mode == "guided_choice":
        return (
            {"guided_choice": list(VERDICT_CHOICES)} if verdict else {"guided_json": GRADE_SCHEMA}
        )
    name, schema = ("verdict", VERDICT_SCHEMA) if verdict else ("grade", GRADE_SCHEMA)
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": name, "strict": True, "schema": schema},
        }
    }


# -- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One endpoint the deployment declares. ``models`` empty: any model (the built-in
    ``local`` endpoint loads any local path or known name); otherwise the first is the
    default. ``api_key_env`` names the variable holding the key in the workers' environment
    (empty: no key)."""

    name: str
    kind: EndpointKind = "openai"
    base_url: str = ""
    models: tuple[str, ...] = ()
    api_key_env: str = ""
    price_per_1k_tokens: float | None = None
    price_per_million_prompt_tokens: float | None = None
    price_per_million_completion_tokens: float | None = None
    structured_output: str = "none"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        where = f"endpoint {self.name!r}"
        if not _NAME.fullmatch(self.name or ""):
            raise ValueError(
                f"endpoint name {self.name!r}: use lower-case letters, digits, '.', '_' or '-' "
                "(at most 64)"
            )
        if self.kind not in ENDPOINT_KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(ENDPOINT_KINDS)}")
        if self.kind == "openai":
            _check_url(self.base_url, f"{where}: base_url")
        elif self.base_url:
            raise ValueError(f"{where}: a {self.kind} endpoint has no base_url")
        if self.api_key_env:
            if not _ENV_NAME.fullmatch(self.api_key_env):
                raise ValueError(f"{where}: api_key_env must be a variable name")
            if self.api_key_env.upper() in PROTECTED_ENV:
                raise ValueError(
                    f"{where}: api_key_env may not be {self.api_key_env}, which holds one of the "
                    "service's own secrets"
                )
        if self.structured_output not in STRUCTURED_OUTPUTS:
            raise ValueError(
                f"{where}: structured_output must be one of {', '.join(STRUCTURED_OUTPUTS)}"
            )
        for name in PRICE_FIELDS:
            price = getattr(self, name)
            if price is not None and (
                isinstance(price, bool)
                or not isinstance(price, int | float)
                or not (math.isfinite(price) and price >= 0)
            ):
                raise ValueError(f"{where}: {name} must be a non-negative number")
        if self.price_per_1k_tokens is not None and (
            self.price_per_million_prompt_tokens is not None
            or self.price_per_million_completion_tokens is not None
        ):
            raise ValueError(
                f"{where}: give either price_per_1k_tokens (one price for every token) or "
                "price_per_million_prompt_tokens/price_per_million_completion_tokens, not both"
            )
        if not isinstance(self.extra_body, Mapping):
            raise ValueError(f"{where}: extra_body must be an object")
        if any(not isinstance(m, str) or not m for m in self.models):
            raise ValueError(f"{where}: models must be non-empty strings")

    @property
    def default_model(self) -> str:
        return self.models[0] if self.models else ""

    @property
    def priced(self) -> bool:
        return any(getattr(self, name) is not None for name in PRICE_FIELDS)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What ``prompt_tokens`` + ``completion_tokens`` cost at the declared price (in the
        deployment's currency), or None when the endpoint declares no price. With only one of
        the per-million prices, the other kind of token is free.

        >>> Endpoint("x", base_url="http://h", price_per_million_prompt_tokens=0.5,
        ...          price_per_million_completion_tokens=2.0).cost(1_000_000, 500_000)
        1.5
        >>> Endpoint("x", base_url="http://h", price_per_1k_tokens=0.002).cost(600, 400)
        0.002
        >>> Endpoint("x", base_url="http://h").cost(10, 10) is None
        True
        """
        if not self.priced:
            return None
        if self.price_per_1k_tokens is not None:
            return (prompt_tokens + completion_tokens) * self.price_per_1k_tokens / 1_000
        prompt = (self.price_per_million_prompt_tokens or 0.0) * prompt_tokens
        completion = (self.price_per_million_completion_tokens or 0.0) * completion_tokens
        return (prompt + completion) / 1_000_000

    def price_label(self) -> str:
        """The declared price in words ("" without one)."""
        if self.price_per_1k_tokens is not None:
            return f"{self.price_per_1k_tokens:g}/1k tokens"
        parts = []
        if self.price_per_million_prompt_tokens is not None:
            parts.append(f"{self.price_per_million_prompt_tokens:g}/M prompt tokens")
        if self.price_per_million_completion_tokens is not None:
            parts.append(f"{self.price_per_million_completion_tokens:g}/M completion tokens")
        return ", ".join(parts)

    def public(self) -> dict[str, Any]:
        """What a researcher may see: no key variable, no key."""
        return {
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "models": list(self.models),
            "price_per_1k_tokens": self.price_per_1k_tokens,
            "price_per_million_prompt_tokens": self.price_per_million_prompt_tokens,
            "price_per_million_completion_tokens": self.price_per_million_completion_tokens,
            "price": self.price_label(),
            "structured_output": self.structured_output,
            "description": self.description,
            "has_key": bool(self.api_key_env),
        }


@dataclass(frozen=True)
class ResolvedEndpoint:
    """What a worker calls: resolved from a spec by the registry at use time. The key is
    read from the environment here and is never stored; ``repr`` hides it."""

    endpoint: Endpoint
    kind: EndpointKind
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    structured_output: str = "none"
    extra_body: Mapping[str, Any] = field(default_factory=dict)


def _check_url(url: str, what: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an http(s) URL, got {url!r}")
    if parts.username or parts.password:
        raise ValueError(f"{what} may not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError(f"{what} may not carry a query or fragment")
    return parts


def _normal_url(url: str) -> str:
    return (url or "").strip().rstrip("/").lower()


_BUILTINS = (
    Endpoint(
        "heuristic",
        kind="heuristic",
        description="Offline length/repetition rules; deterministic, not an LLM.",
    ),
    Endpoint("local", kind="local", description="A transformers model loaded by the worker."),
)


@dataclass(frozen=True)
class EndpointRegistry:
    """The endpoints a deployment declares (plus the built-ins), the default judge, and the
    hosts a keyless custom base URL may point at (none unless the deployment lists some)."""

    endpoints: Mapping[str, Endpoint]
    default_judge: str = "heuristic"
    default_model: str = ""
    custom_hosts: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        declared: Sequence[Endpoint] = (),
        *,
        default_judge: str = "",
        default_model: str = "",
        custom_hosts: Sequence[str] = (),
    ) -> EndpointRegistry:
        endpoints: dict[str, Endpoint] = {e.name: e for e in _BUILTINS}
        for endpoint in declared:
            if endpoint.name in endpoints:
                raise ValueError(f"endpoint {endpoint.name!r} is declared twice (or is built in)")
            if endpoint.name == CUSTOM_ENDPOINT:
                raise ValueError(f"endpoint name {CUSTOM_ENDPOINT!r} is reserved")
            endpoints[endpoint.name] = endpoint
        hosts = tuple(h.strip().lower() for h in custom_hosts if h.strip())
        if hosts:
            endpoints[CUSTOM_ENDPOINT] = Endpoint(
                CUSTOM_ENDPOINT,
                kind="openai",
                base_url="http://" + hosts[0],
                description="A base URL of your own on " + ", ".join(hosts) + " (no key sent).",
            )
        default = default_judge or "heuristic"
        if default not in endpoints:
            raise ValueError(f"default judge endpoint {default!r} is not declared")
        return cls(endpoints, default, default_model, hosts)

    def names(self, kinds: Sequence[str] = ENDPOINT_KINDS) -> list[str]:
        return [name for name, e in self.endpoints.items() if e.kind in kinds]

    def get(self, name: str) -> Endpoint:
        try:
            return self.endpoints[name]
        except KeyError:
            raise ValueError(
                f"unknown endpoint {name!r}; this deployment declares: "
                f"{', '.join(self.endpoints)} (see {ENDPOINTS_ENV})"
            ) from None

    def by_url(self, base_url: str) -> Endpoint | None:
        """The declared endpoint at ``base_url`` (for stored specs from before the registry)."""
        wanted = _normal_url(base_url)
        for endpoint in self.endpoints.values():
            if (
                endpoint.kind == "openai"
                and endpoint.name != CUSTOM_ENDPOINT
                and _normal_url(endpoint.base_url) == wanted
            ):
                return endpoint
        return None

    def check_custom_url(self, url: str) -> str:
        """``url`` when custom URLs are allowed and its host is listed, else ValueError."""
        if not self.custom_hosts:
            raise ValueError(
                "this deployment does not allow a custom base URL: choose a declared endpoint "
                f"({', '.join(self.names(('openai',))) or 'none declared'})"
            )
        parts = _check_url(url, "base_url")
        host = (parts.hostname or "").lower()
        if host not in self.custom_hosts:
            raise ValueError(
                f"base_url host {host!r} is not one this deployment allows "
                f"({', '.join(self.custom_hosts)})"
            )
        return url.rstrip("/")

    def resolve(self, spec: EndpointSpec) -> ResolvedEndpoint:
        """The address, model and key ``spec`` may use — checked against this registry now."""
        endpoint = self.get(spec.endpoint)
        model = spec.model or endpoint.default_model
        if endpoint.models and model not in endpoint.models:
            raise ValueError(
                f"endpoint {endpoint.name!r} serves {', '.join(endpoint.models)}; "
                f"model {model!r} is not one of them"
            )
        if endpoint.kind in ("openai", "local") and not model:
            raise ValueError(
                f"endpoint {endpoint.name!r} needs a model (the endpoint's model name, or a "
                "local model path)"
            )
        base_url, api_key = endpoint.base_url, None
        if endpoint.name == CUSTOM_ENDPOINT:
            base_url = self.check_custom_url(spec.base_url)  # never with a key
        elif spec.base_url:
            raise ValueError(
                f"endpoint {endpoint.name!r} has its own base URL; a custom base_url is only "
                f"for the {CUSTOM_ENDPOINT!r} endpoint"
            )
        elif endpoint.api_key_env:
            api_key = os.environ.get(endpoint.api_key_env) or None
        mode = spec.structured_output or endpoint.structured_output
        if mode not in STRUCTURED_OUTPUTS:
            raise ValueError(
                f"structured_output must be one of {', '.join(STRUCTURED_OUTPUTS)}; got {mode!r}"
            )
        return ResolvedEndpoint(
            endpoint=endpoint,
            kind=endpoint.kind,
            base_url=base_url,
            model=model,
            api_key=api_key,
            structured_output=mode,
            extra_body={**endpoint.extra_body, **spec.extra_body},
        )

    def cost(self, name: str, prompt_tokens: int, completion_tokens: int) -> float | None:
        """What the tokens cost at endpoint ``name``'s declared price; None when the endpoint
        is unknown (no longer declared) or declares no price."""
        endpoint = self.endpoints.get(name)
        return endpoint.cost(prompt_tokens, completion_tokens) if endpoint else None


def parse_endpoints(value: str, *, source: str = ENDPOINTS_ENV) -> dict[str, Any]:
    """The declarations in ``value``: JSON text, or the path of a ``.json``/``.toml`` file.

    Returns ``{"endpoints": [Endpoint, ...], "default_judge": str, "custom_hosts": [...]}``.
    Accepts a list of endpoint objects, or an object with ``endpoints`` (a list),
    ``default_judge`` and ``custom_hosts``. Errors name the source and the entry.
    """
    text = value.strip()
    if not text:
        return {"endpoints": [], "default_judge": "", "custom_hosts": []}
    if text[0] in "[{":
        try:
            payload: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{source}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    else:
        path = Path(text).expanduser()
        source = f"{source} file {path}"
        try:
            raw = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{source}: cannot read ({exc.strerror})") from None
        try:
            payload = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{source}: {exc}") from None
    if isinstance(payload, list):
        payload = {"endpoints": payload}
    if not isinstance(payload, dict):
        raise ValueError(f"{source}: expected a list of endpoints or an object with 'endpoints'")
    unknown = sorted(set(payload) - {"endpoints", "default_judge", "custom_hosts"})
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}")
    entries = payload.get("endpoints") or []
    if not isinstance(entries, list):
        raise ValueError(f"{source}: 'endpoints' must be a list")
    known = {f.name for f in dataclasses.fields(Endpoint)}
    endpoints = []
    for number, entry in enumerate(entries, 1):
        where = f"{source}: endpoint #{number}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected an object")
        entry = dict(entry)
        if "model" in entry and "models" not in entry:
            entry["models"] = [entry.pop("model")]
        bad = sorted(set(entry) - known)
        if bad:
            raise ValueError(
                f"{where}: unknown field(s) {', '.join(bad)}; known: {', '.join(sorted(known))}"
            )
        if "api_key" in str(entry.get("extra_body", "")) or looks_like_secret(
            entry.get("extra_body", {})
        ):
            raise ValueError(
                f"{where}: extra_body may not hold a key (name its variable in api_key_env)"
            )
        entry["models"] = tuple(entry.get("models") or ())
        try:
            endpoints.append(Endpoint(**entry))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    hosts = payload.get("custom_hosts") or []
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ValueError(f"{source}: 'custom_hosts' must be a list of host names")
    return {
        "endpoints": endpoints,
        "default_judge": str(payload.get("default_judge") or ""),
        "custom_hosts": hosts,
    }


def registry_from_env(environ: Mapping[str, str] | None = None) -> EndpointRegistry:
    """The registry ``environ`` (default ``os.environ``) declares: ``WRITING_RL_ENDPOINTS``,
    plus one endpoint named ``judge`` from the older ``WRITING_RL_JUDGE_KIND=openai``,
    ``WRITING_RL_JUDGE_BASE_URL``, ``WRITING_RL_JUDGE_MODEL`` and
    ``WRITING_RL_JUDGE_API_KEY_ENV``, which also make the default judge of new runs."""
    env = os.environ if environ is None else environ
    parsed = parse_endpoints(env.get(ENDPOINTS_ENV, ""))
    declared: list[Endpoint] = parsed["endpoints"]
    default = parsed["default_judge"]
    default_model = ""
    kind = env.get("WRITING_RL_JUDGE_KIND", "").strip()
    model = env.get("WRITING_RL_JUDGE_MODEL", "").strip()
    if kind == "openai":
        url = env.get("WRITING_RL_JUDGE_BASE_URL", "").strip()
        if not url:
            raise ValueError("WRITING_RL_JUDGE_KIND=openai needs WRITING_RL_JUDGE_BASE_URL")
        if not any(e.name == COMPAT_ENDPOINT for e in declared):
            declared.append(
                Endpoint(
                    COMPAT_ENDPOINT,
                    kind="openai",
                    base_url=url,
                    models=(model,) if model else (),
                    api_key_env=env.get("WRITING_RL_JUDGE_API_KEY_ENV", "OPENAI_API_KEY"),
                    structured_output=env.get("WRITING_RL_JUDGE_STRUCTURED_OUTPUT", "none"),
                    description="Declared by WRITING_RL_JUDGE_BASE_URL.",
                )
            )
        default = default or COMPAT_ENDPOINT
    elif kind in ("local", "heuristic"):
        default = default or kind
        default_model = model if kind == "local" else ""
    elif kind:
        raise ValueError(f"WRITING_RL_JUDGE_KIND must be one of {', '.join(ENDPOINT_KINDS)}")
    hosts = parsed["custom_hosts"] + [
        h for h in env.get(CUSTOM_HOSTS_ENV, "").split(",") if h.strip()
    ]
    return EndpointRegistry.build(
        declared, default_judge=default, default_model=default_model, custom_hosts=hosts
    )


_CACHE: dict[tuple[Any, ...], EndpointRegistry] = {}
_WATCHED = (
    ENDPOINTS_ENV,
    CUSTOM_HOSTS_ENV,
    "WRITING_RL_JUDGE_KIND",
    "WRITING_RL_JUDGE_BASE_URL",
    "WRITING_RL_JUDGE_MODEL",
    "WRITING_RL_JUDGE_API_KEY_ENV",
    "WRITING_RL_JUDGE_STRUCTURED_OUTPUT",
)


def default_registry() -> EndpointRegistry:
    """The registry of this process's environment, parsed once per distinct configuration
    (a file is re-read when it changes)."""
    values = tuple(os.environ.get(name, "") for name in _WATCHED)
    mtime: float | None = None
    source = values[0].strip()
    if source and source[0] not in "[{":
        try:
            mtime = Path(source).expanduser().stat().st_mtime
        except OSError:
            mtime = None
    key = (*values, mtime)
    registry = _CACHE.get(key)
    if registry is None:
        registry = registry_from_env()
        _CACHE.clear()
        _CACHE[key] = registry
    return registry


# -- one use of an endpoint --------------------------------------------------------------------


def _help(text: str, **more: Any) -> dict[str, Any]:
    return {"help": text, **more}


@dataclass(kw_only=True)
class EndpointSpec:
    """One use of a declared endpoint: which (by name), which model, and how to call it.

    JSON-safe; this is what runs, jobs and campaigns store. No URL with a key, no key
    variable: :meth:`EndpointRegistry.resolve` supplies both at use time."""

    endpoint: str = field(
        default="heuristic",
        metadata=_help(
            "Which endpoint, by the name the deployment gave it ('heuristic' and 'local' are "
            "built in)."
        ),
    )
    model: str = field(
        default="",
        metadata=_help(
            "The model, among those the endpoint lists (empty = its first). For 'local': a "
            "local model path or a known name."
        ),
    )
    base_url: str = field(
        default="",
        metadata=_help(
            "Only for the 'custom' endpoint, where the deployment allows it: a base URL on a "
            "listed host. No key is ever sent there.",
            advanced=True,
        ),
    )
    temperature: float = field(default=0.0, metadata=_help("Sampling temperature."))
    max_tokens: int | None = field(
        default=1024, metadata=_help("Maximum tokens of one answer (empty = the endpoint's).")
    )
    max_concurrency: int = field(default=32, metadata=_help("Calls in flight at once."))
    timeout_s: float = field(
        default=120.0, metadata=_help("Seconds before one call is abandoned and retried.")
    )
    max_retries: int = field(
        default=5,
        metadata=_help("Retries of a failed call (network error, 429, 5xx) before giving up."),
    )
    structured_output: str = field(
        default="",
        metadata=_help(
            "How the endpoint is made to answer in the expected shape: 'grammar' (llama.cpp "
            "GBNF), 'guided_choice' (vLLM guided choice / JSON), 'json_schema' "
            "(OpenAI-compatible response_format), 'none'; empty = the endpoint's setting.",
            choices=("", *STRUCTURED_OUTPUTS),
        ),
    )
    extra_body: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help(
            'Extra fields sent in every request body, e.g. {"top_k": 20} (never a key).',
            advanced=True,
        ),
    )
    seed: int | None = field(
        default=None, metadata=_help("Sampling seed sent to the endpoint (empty = none).")
    )
    hedge: bool = field(
        default=True,
        metadata=_help(
            "Send a second copy of a call slower than 95% of recent calls when a slot is idle, "
            "and use the first answer (shortens a step's tail; extra calls may be billed)."
        ),
    )

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not _NAME.fullmatch(self.endpoint or ""):
            raise ValueError(
                f"{name}.endpoint must name a declared endpoint; got {self.endpoint!r}"
            )
        if self.structured_output and self.structured_output not in STRUCTURED_OUTPUTS:
            raise ValueError(
                f"{name}.structured_output must be one of {', '.join(STRUCTURED_OUTPUTS)} "
                f"(or empty); got {self.structured_output!r}"
            )
        if not isinstance(self.extra_body, dict):
            raise ValueError(f"{name}.extra_body must be a JSON object")
        reserved = sorted(set(self.extra_body) & {"model", "messages", "stream", "n"})
        if reserved:
            raise ValueError(f"{name}.extra_body may not set {', '.join(reserved)}")
        for text_field in ("model", "base_url"):
            if looks_like_secret(getattr(self, text_field)):
                raise ValueError(
                    f"{name}.{text_field} looks like an API key; keys are never typed here "
                    "(the deployment holds them). The value was refused."
                )
        if looks_like_secret(self.extra_body):
            raise ValueError(
                f"{name}.extra_body looks like it holds an API key; keys are never typed here. "
                "The value was refused."
            )
        if self.base_url:
            _check_url(self.base_url, f"{name}.base_url")
        if self.max_concurrency < 1:
            raise ValueError(
                f"{name}.max_concurrency must be at least 1; got {self.max_concurrency}"
            )
        if self.max_retries < 0:
            raise ValueError(f"{name}.max_retries cannot be negative; got {self.max_retries}")
        if not self.timeout_s > 0:
            raise ValueError(f"{name}.timeout_s must be positive seconds; got {self.timeout_s}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"{name}.max_tokens must be at least 1; got {self.max_tokens}")
        if not self.temperature >= 0:
            raise ValueError(f"{name}.temperature must be >= 0; got {self.temperature}")

    @property
    def kind(self) -> EndpointKind:
        """The endpoint's kind (``openai``, ``local`` or ``heuristic``), from the registry."""
        if self.endpoint == "heuristic":
            return "heuristic"
        if self.endpoint == "local":
            return "local"
        return default_registry().get(self.endpoint).kind

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolve(self, registry: EndpointRegistry | None = None) -> ResolvedEndpoint:
        return (registry or default_registry()).resolve(self)

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}

    @classmethod
    def _from_payload(
        cls, payload: Mapping[str, Any], registry: EndpointRegistry | None = None
    ) -> dict[str, Any]:
        """``payload`` with stored fields from before the registry (``kind``, ``base_url``,
        ``api_key_env``) mapped onto a declared endpoint, or a ValueError saying why not."""
        values = dict(payload)
        if "kind" not in values or "endpoint" in values:
            return values
        kind = values.pop("kind")
        values.pop("api_key_env", None)  # the declared endpoint's key applies, or none
        url = values.pop("base_url", "") or ""
        if kind in BUILTIN_ENDPOINTS:
            values["endpoint"] = kind
            return values
        if kind != "openai":
            raise ValueError(f"{cls.__name__}: unknown kind {kind!r}")
        registry = registry or default_registry()
        endpoint = registry.by_url(url) if url else None
        if endpoint is None:
            raise ValueError(
                f"this stored {cls.__name__} names the base URL {url or '(none)'!r}, which is not "
                f"a declared endpoint. Declare it in {ENDPOINTS_ENV} (it is then used by name) "
                "or choose a declared endpoint."
            )
        values["endpoint"] = endpoint.name
        return values


def upgrade_stored_spec(
    payload: Any, registry: EndpointRegistry | None = None, *, writer: bool = False
) -> Any:
    """A stored spec dict from before the registry, rewritten to name its endpoint (for data
    migrations): ``kind`` heuristic/local becomes that built-in endpoint; ``openai`` with a
    base URL a declared endpoint serves becomes that endpoint's name. ``api_key_env`` is
    always dropped (a stored key variable — or a key pasted where its name went — goes).
    An ``openai`` spec whose URL is not declared keeps ``kind``/``base_url``: it is refused,
    with the reason, when it is used. Anything that is not such a dict is returned as is."""
    if not isinstance(payload, Mapping) or "endpoint" in payload:
        return payload
    if "kind" not in payload and not writer:
        return payload
    values = dict(payload)
    values.pop("api_key_env", None)
    if writer and "max_new_tokens" in values and "max_tokens" not in values:
        values["max_tokens"] = values.pop("max_new_tokens")
    kind = values.get("kind", "local" if writer else None)
    if kind in BUILTIN_ENDPOINTS:
        values.pop("kind", None)
        values.pop("base_url", None)
        values["endpoint"] = kind
    elif kind == "openai":
        endpoint = (registry or default_registry()).by_url(values.get("base_url") or "")
        if endpoint is not None:
            values.pop("kind")
            values.pop("base_url", None)
            values["endpoint"] = endpoint.name
    return values
