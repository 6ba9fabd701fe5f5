"""Metric presets: definitions a config names (`metrics_presets: [genai]`) instead of
writing them by hand.

A preset is expanded, at load, into ordinary metric definitions (`MetricConfig`), so the
extractor's generated code, the store and /metrics see nothing new.

`genai` maps the log lines of LLM calls onto the OpenTelemetry GenAI semantic
conventions (gen-ai-metrics.md), in Prometheus naming:

    gen_ai_client_requests_total                 counter    every LLM call
    gen_ai_client_errors_total                   counter    calls with an error type
    gen_ai_client_token_usage                    histogram  tokens, gen_ai_token_type=input|output
    gen_ai_client_operation_duration_seconds     histogram  when the log has a duration
    gen_ai_client_cost_usd_total                 counter    when the config has `pricing:`
                                                            (calls without an error)

labelled `gen_ai_system`, `gen_ai_request_model`, `gen_ai_operation_name` (and
`error_type`). An LLM call is an event that has a model field (and matches the preset's
`match:`). Where each logical field is found depends on the log's shape; SHAPES holds
one documented mapping per shape, and `auto` (the default) tries them all, in order.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from agent.metrics.config import (
    MetricConfig,
    field_text,
    normal_field,
    parse_field,
    presence_field,
    valid_path,
)
from agent.support.configmodel import Model

PresetName = Literal["genai"]
Shape = Literal["auto", "otel", "openai", "anthropic", "litellm", "langchain"]

FIELDS = (
    "model",
    "system",
    "operation",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "duration",
    "error_type",
)
"""The logical fields of an LLM call; `fields:` overrides any of them."""

SHAPES: dict[str, dict[str, str]] = {
    # OpenTelemetry GenAI attribute names (registry/attributes/gen-ai.md), as flat dotted
    # keys or nested objects. input_tokens includes the cached ones.
    "otel": {
        "model": "gen_ai.request.model | gen_ai.response.model",
        "system": "gen_ai.provider.name | gen_ai.system",
        "operation": "gen_ai.operation.name",
        "input_tokens": "gen_ai.usage.input_tokens",
        "output_tokens": "gen_ai.usage.output_tokens",
        "cache_read_tokens": "gen_ai.usage.cache_read.input_tokens",
        "cache_write_tokens": "gen_ai.usage.cache_creation.input_tokens",
        "error_type": "error.type",
    },
    # An OpenAI SDK response logged as JSON: ChatCompletion (CompletionUsage:
    # prompt_tokens includes prompt_tokens_details.cached_tokens) or a Responses API
    # Response (ResponseUsage: input_tokens includes input_tokens_details.cached_tokens).
    "openai": {
        "model": "model",
        "input_tokens": "usage.prompt_tokens | usage.input_tokens",
        "output_tokens": "usage.completion_tokens | usage.output_tokens",
        "cache_read_tokens": (
            "usage.prompt_tokens_details.cached_tokens | usage.input_tokens_details.cached_tokens"
        ),
    },
    # An Anthropic SDK Message logged as JSON (Usage: input_tokens counts only the tokens
    # after the last cache breakpoint, so the total adds the cache reads and writes).
    "anthropic": {
        "model": "model",
        "input_tokens": (
            "usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens"
        ),
        "output_tokens": "usage.output_tokens",
        "cache_read_tokens": "usage.cache_read_input_tokens",
        "cache_write_tokens": "usage.cache_creation_input_tokens",
    },
    # LiteLLM's StandardLoggingPayload (`kwargs["standard_logging_object"]`), logged by a
    # callback: OpenAI-style counts; response_time in seconds (time to first token when
    # streaming); error_information on failures.
    "litellm": {
        "model": "model",
        "system": "custom_llm_provider",
        "input_tokens": "prompt_tokens",
        "output_tokens": "completion_tokens",
        "cache_read_tokens": "metadata.usage_object.prompt_tokens_details.cached_tokens",
        "duration": "response_time",
        "error_type": "error_information.error_class",
    },
    # LangChain's LLMResult, logged by a callback's on_llm_end: llm_output as chat models
    # such as ChatOpenAI fill it.
    "langchain": {
        "model": "llm_output.model_name",
        "input_tokens": "llm_output.token_usage.prompt_tokens",
        "output_tokens": "llm_output.token_usage.completion_tokens",
        "cache_read_tokens": "llm_output.token_usage.prompt_tokens_details.cached_tokens",
    },
}

SYSTEM_OF_SHAPE = {"openai": "openai", "anthropic": "anthropic"}
"""`gen_ai_system` for shapes whose lines do not name the provider."""

DURATION_SCALE = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

# Bucket boundaries the OpenTelemetry GenAI metrics specify (ExplicitBucketBoundaries).
TOKEN_BUCKETS = [4.0**i for i in range(14)]  # 1, 4, 16, ... 67108864
DURATION_BUCKETS = [0.01 * 2.0**i for i in range(14)]  # 0.01, 0.02, 0.04, ... 81.92


def _auto(field: str) -> str | None:
    """The shapes' alternatives for one field, in SHAPES order. Two alternatives that start
    with the same path are one: the longer sum is kept, at the first one's place
    (Anthropic's `usage.input_tokens + cache...` also reads OpenAI's Responses
    `usage.input_tokens` right, since those lines have no Anthropic cache fields)."""
    alternatives: dict[str, list[str]] = {}
    for mapping in SHAPES.values():
        expr = mapping.get(field)
        if expr is None:
            continue
        parsed = parse_field(expr, sums=True)
        assert not isinstance(parsed, str), expr
        for terms in parsed:
            known = alternatives.get(terms[0])
            if known is None or len(terms) > len(known):
                alternatives[terms[0]] = terms
    if not alternatives:
        return None
    return " | ".join(" + ".join(terms) for terms in alternatives.values())


def shape_fields(shape: str) -> dict[str, str | None]:
    """Logical field -> field expression of a shape (`auto`: all shapes)."""
    if shape == "auto":
        return {f: _auto(f) for f in FIELDS}
    return {f: SHAPES[shape].get(f) for f in FIELDS}


class PresetConfig(Model):
    """One preset with its options; a name alone (`genai`) is `{preset: genai}`."""

    preset: PresetName
    """Which preset: `genai` (LLM calls, OpenTelemetry GenAI metrics)."""
    shape: Shape = "auto"
    """Where the log keeps each field: `otel`, `openai`, `anthropic`, `litellm`,
    `langchain`, or `auto` (each field looked up in every shape, in that order)."""
    under: str | None = None
    """The field holding the logged object when it is not the event itself
    (`response` for `{"msg": "llm call", "response": {...ChatCompletion...}}`): the
    shape's paths are read inside it. Paths given in `fields` are not."""
    match: dict[str, Any] = {}
    """Conditions an event must also meet to be an LLM call (as a metric's `match`)."""
    fields: dict[str, str | None] = {}
    """Logical field -> field path (or `a | b`, and `a + b` for token counts) in your
    log, replacing the shape's; null leaves the field out."""
    system: str = ""
    """`gen_ai_system` when the log does not name the provider (the `openai` and
    `anthropic` shapes default to theirs)."""
    duration_unit: Literal["s", "ms", "us", "ns"] = "s"
    """Unit of the `duration` field."""
    max_series: int = Field(default=1000, gt=0)
    """Cap on label sets of each generated metric."""

    @model_validator(mode="before")
    @classmethod
    def _by_name(cls, data: Any) -> Any:
        """`genai` alone stands for `{preset: genai}`."""
        return {"preset": data} if isinstance(data, str) else data

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: dict[str, str | None]) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, expr in value.items():
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; the fields are {', '.join(FIELDS)}")
            if expr is None:
                out[name] = None
                continue
            sums = name.endswith("_tokens")
            try:
                out[name] = normal_field(expr, sums=sums)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return out

    @model_validator(mode="after")
    def _check(self) -> PresetConfig:
        if self.resolved_fields()["model"] is None:
            raise ValueError("`fields.model` cannot be left out: a model field marks an LLM call")
        try:
            MetricConfig.model_validate({"name": "x_total", "type": "counter", "match": self.match})
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"match.{'.'.join(str(p) for p in e['loc'][1:])}: "
                    + e["msg"].removeprefix("Value error, ")
                    for e in exc.errors()
                )
            ) from None
        return self

    @field_validator("under")
    @classmethod
    def _under(cls, value: str | None) -> str | None:
        if value is not None and not valid_path(value):
            raise ValueError(f"not a field path (such as `response`): {value!r}")
        return value

    def resolved_fields(self) -> dict[str, str | None]:
        fields = shape_fields(self.shape)
        if self.under is not None:
            fields = {name: _inside(self.under, expr) for name, expr in fields.items()}
        fields.update(self.fields)
        return fields


def _inside(prefix: str, expr: str | None) -> str | None:
    """Every path of a field expression read inside `prefix`."""
    if expr is None:
        return None
    parsed = parse_field(expr, sums=True)
    assert not isinstance(parsed, str), expr
    return field_text([[f"{prefix}.{term}" for term in terms] for terms in parsed])


def _genai(p: PresetConfig, priced: bool) -> list[dict[str, Any]]:
    f = p.resolved_fields()
    model = f["model"]
    assert model is not None
    match = {presence_field(model): {"exists": True}, **p.match}
    labels: dict[str, Any] = {"gen_ai_request_model": model}
    static: dict[str, str] = {}
    system = p.system or SYSTEM_OF_SHAPE.get(p.shape, "")
    if f["system"] is not None:
        labels["gen_ai_system"] = {"field": f["system"], "default": system}
    elif system:
        static["gen_ai_system"] = system
    if f["operation"] is not None:
        labels["gen_ai_operation_name"] = f["operation"]
    common = {"static_labels": static, "max_series": p.max_series}
    out: list[dict[str, Any]] = [
        {
            "name": "gen_ai_client_requests_total",
            "type": "counter",
            "help": "LLM calls (operations), by provider, model and operation.",
            "match": match,
            "labels": labels,
            **common,
        }
    ]
    error = f["error_type"]
    if error is not None:
        out.append(
            {
                "name": "gen_ai_client_errors_total",
                "type": "counter",
                "help": "LLM calls that ended in an error, by error type (error.type).",
                # Present and not empty: LiteLLM fills error_information with "" on success.
                "match": {**match, presence_field(error): {"regex": "(?s).+"}},
                "labels": {**labels, "error_type": error},
                **common,
            }
        )
    tokens = {
        kind: f[f"{kind}_tokens"] for kind in ("input", "output") if f[f"{kind}_tokens"] is not None
    }
    if tokens:
        out.append(
            {
                "name": "gen_ai_client_token_usage",
                "type": "histogram",
                "help": "Tokens used per LLM call, by token type (input, output).",
                "match": match,
                "labels": labels,
                "value": tokens,
                "value_label": "gen_ai_token_type",
                "buckets": TOKEN_BUCKETS,
                **common,
            }
        )
    duration = f["duration"]
    if duration is not None:
        out.append(
            {
                "name": "gen_ai_client_operation_duration_seconds",
                "type": "histogram",
                "help": "Duration of LLM calls (gen_ai.client.operation.duration).",
                "match": {**match, presence_field(duration): {"exists": True}},
                "labels": {**labels, **({"error_type": error} if error is not None else {})},
                "value": duration,
                "scale": DURATION_SCALE[p.duration_unit],
                "buckets": DURATION_BUCKETS,
                **common,
            }
        )
    if priced and tokens:
        # A call that failed is not billed by the provider, whatever tokens it logged.
        ok = {presence_field(error): {"in": [None, ""]}} if error is not None else {}
        out.append(
            {
                "name": "gen_ai_client_cost_usd_total",
                "type": "counter",
                "help": "What LLM calls cost in USD, from their tokens and the pricing table.",
                "match": {**match, **ok},
                "labels": labels,
                "cost": {
                    "model": model,
                    "input": f["input_tokens"],
                    "output": f["output_tokens"],
                    "cache_read": f["cache_read_tokens"],
                    "cache_write": f["cache_write_tokens"],
                },
                **common,
            }
        )
    return out


def expand(preset: PresetConfig, *, priced: bool) -> list[MetricConfig]:
    """The metric definitions a preset stands for (the cost metric only when `priced`:
    the config has a price table)."""
    return [MetricConfig.model_validate(d) for d in _genai(preset, priced)]
