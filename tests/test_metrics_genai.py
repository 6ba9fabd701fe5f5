"""The genai preset: LLM calls logged in the shapes chatbots really log them, turned into
the OpenTelemetry GenAI metrics (Prometheus naming) a scrape of /metrics shows.

Each sample line has the fields of the real object it stands for: an OpenAI SDK
ChatCompletion / Responses API Response (`CompletionUsage`, `ResponseUsage`), an
Anthropic SDK Message (`Usage`), LiteLLM's StandardLoggingPayload, LangChain's LLMResult
and OpenTelemetry GenAI attribute names. Expected numbers are worked out here from the
lines and the price table, never copied from chatwatch's output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from agent.config import Config, ConfigError, loads
from agent.metrics.presets import DURATION_BUCKETS, TOKEN_BUCKETS
from tests.metrics_support import Pipeline

PRICES = {
    "gpt-4o-mini": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
    "/^claude-3-5-haiku-/": {
        "input": 0.80,
        "output": 4.00,
        "cached_input": 0.08,
        "cache_write": 1.00,
    },
    "/^gpt-4o-mini-/": {"input": 0.15, "output": 0.60, "cached_input": 0.075},
}

OPENAI_CHAT = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
    "service_tier": "default",
    "system_fingerprint": "fp_06737a9306",
}

OPENAI_RESPONSES = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "model": "gpt-4o-mini-2024-07-18",
    "usage": {
        "input_tokens": 800,
        "input_tokens_details": {"cached_tokens": 512},
        "output_tokens": 90,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 890,
    },
}

ANTHROPIC = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Hi"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 50,
        "cache_creation_input_tokens": 2000,
        "cache_read_input_tokens": 6000,
        "output_tokens": 400,
        "service_tier": "standard",
    },
}

LITELLM_OK = {
    "id": "chatcmpl-2f1e9c",
    "trace_id": "a1b2c3",
    "call_type": "acompletion",
    "stream": False,
    "response_cost": 0.00015,
    "status": "success",
    "custom_llm_provider": "openai",
    "total_tokens": 700,
    "prompt_tokens": 600,
    "completion_tokens": 100,
    "startTime": 1741569950.1,
    "endTime": 1741569951.35,
    "completionStartTime": 1741569951.35,
    "response_time": 1.25,
    "model": "gpt-4o-mini",
    "model_group": "gpt-4o-mini",
    "api_base": "https://api.openai.com/v1",
    "metadata": {
        "usage_object": {
            "prompt_tokens": 600,
            "completion_tokens": 100,
            "total_tokens": 700,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
    },
    "cache_hit": None,
    "error_str": None,
    "error_information": {"error_code": "", "error_class": "", "error_message": ""},
}

LITELLM_FAILED = {
    **LITELLM_OK,
    "status": "failure",
    "total_tokens": 0,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "response_time": 0.31,
    "error_str": "RateLimitError: Rate limit reached for gpt-4o-mini",
    "error_information": {
        "error_code": "429",
        "error_class": "RateLimitError",
        "llm_provider": "openai",
        "error_message": "Rate limit reached for gpt-4o-mini",
    },
}

LANGCHAIN = {
    "generations": [[{"text": "Hello!", "generation_info": {"finish_reason": "stop"}}]],
    "llm_output": {
        "token_usage": {
            "completion_tokens": 9,
            "prompt_tokens": 11,
            "total_tokens": 20,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        },
        "model_name": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_560af6e559",
    },
    "run": None,
}

OTEL = {
    "event": "gen_ai.client.inference",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.input_tokens": 300,
    "gen_ai.usage.output_tokens": 40,
    "gen_ai.usage.cache_read.input_tokens": 200,
}

OTEL_ERROR = {
    "event": "gen_ai.client.inference",
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o-mini",
    "error.type": "timeout",
}


def config(**root: Any) -> Config:
    """A config with one stdin source and the given root keys."""
    import yaml

    return loads(yaml.safe_dump({"sources": [{"name": "app", "stdin": True}], **root}))


class GenAIPipeline(Pipeline):
    def series(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """As Prometheus reads a scrape: a label with an empty value is no label."""
        return {
            frozenset((k, x) for k, x in got if x): v
            for (sample, got), v in self.samples().items()
            if sample == name
        }

    def value(self, name: str, **labels: str) -> float | None:
        return self.series(name).get(frozenset(labels.items()))


def pipeline(**root: Any) -> GenAIPipeline:
    return GenAIPipeline(*config(**root).metrics)


def usd(tokens: dict[str, float], price: dict[str, float]) -> float:
    """The cost of a call worked out by hand: uncached input, cache reads and writes,
    output, each at its price per million tokens."""
    cached = tokens.get("cache_read", 0)
    written = tokens.get("cache_write", 0)
    uncached = tokens["input"] - cached - written
    return (
        uncached * price["input"]
        + cached * price.get("cached_input", price["input"])
        + written * price.get("cache_write", price["input"])
        + tokens["output"] * price["output"]
    ) / 1e6


def test_each_shape_counts_calls_tokens_and_cost_by_model() -> None:
    p = pipeline(metrics_presets=["genai"], pricing=PRICES)
    p.feed(OPENAI_CHAT, OPENAI_RESPONSES, ANTHROPIC, LITELLM_OK, LANGCHAIN, OTEL)

    mini, haiku = "gpt-4o-mini-2024-07-18", "claude-3-5-haiku-20241022"
    requests = {
        m: p.value("gen_ai_client_requests_total", gen_ai_request_model=m) for m in (mini, haiku)
    }
    # ChatCompletion, Response and LLMResult carry the dated model name; no system field.
    assert requests == {mini: 3.0, haiku: 1.0}
    both = {"gen_ai_request_model": "gpt-4o-mini", "gen_ai_system": "openai"}
    assert p.value("gen_ai_client_requests_total", **both) == 1.0  # LiteLLM
    assert (
        p.value("gen_ai_client_requests_total", **both, gen_ai_operation_name="chat") == 1.0
    )  # OTel

    def tokens(model: str, kind: str, **labels: str) -> float | None:
        return p.value(
            "gen_ai_client_token_usage_sum",
            gen_ai_request_model=model,
            gen_ai_token_type=kind,
            **labels,
        )

    chat_in = OPENAI_CHAT["usage"]["prompt_tokens"]
    resp_in = OPENAI_RESPONSES["usage"]["input_tokens"]
    lc_in = LANGCHAIN["llm_output"]["token_usage"]["prompt_tokens"]
    assert tokens(mini, "input") == chat_in + resp_in + lc_in
    assert tokens(mini, "output") == (
        OPENAI_CHAT["usage"]["completion_tokens"]
        + OPENAI_RESPONSES["usage"]["output_tokens"]
        + LANGCHAIN["llm_output"]["token_usage"]["completion_tokens"]
    )
    # Anthropic's input_tokens leaves out the cache: the input total adds it back.
    a = ANTHROPIC["usage"]
    anthropic_in = (
        a["input_tokens"] + a["cache_read_input_tokens"] + a["cache_creation_input_tokens"]
    )
    assert tokens(haiku, "input") == anthropic_in
    assert tokens(haiku, "output") == a["output_tokens"]
    assert tokens("gpt-4o-mini", "input", gen_ai_system="openai") == LITELLM_OK["prompt_tokens"]
    assert (
        tokens("gpt-4o-mini", "input", gen_ai_system="openai", gen_ai_operation_name="chat")
        == OTEL["gen_ai.usage.input_tokens"]
    )

    mini_price, haiku_price = PRICES["gpt-4o-mini"], PRICES["/^claude-3-5-haiku-/"]
    chat_cost = usd(
        {
            "input": chat_in,
            "cache_read": OPENAI_CHAT["usage"]["prompt_tokens_details"]["cached_tokens"],
            "output": OPENAI_CHAT["usage"]["completion_tokens"],
        },
        mini_price,
    )
    resp_cost = usd(
        {
            "input": resp_in,
            "cache_read": OPENAI_RESPONSES["usage"]["input_tokens_details"]["cached_tokens"],
            "output": OPENAI_RESPONSES["usage"]["output_tokens"],
        },
        mini_price,
    )
    lc_cost = usd(
        {"input": lc_in, "output": LANGCHAIN["llm_output"]["token_usage"]["completion_tokens"]},
        mini_price,
    )
    assert p.value("gen_ai_client_cost_usd_total", gen_ai_request_model=mini) == pytest.approx(
        chat_cost + resp_cost + lc_cost
    )
    haiku_cost = usd(
        {
            "input": anthropic_in,
            "cache_read": a["cache_read_input_tokens"],
            "cache_write": a["cache_creation_input_tokens"],
            "output": a["output_tokens"],
        },
        haiku_price,
    )
    assert p.value("gen_ai_client_cost_usd_total", gen_ai_request_model=haiku) == pytest.approx(
        haiku_cost
    )
    otel_cost = usd(
        {
            "input": OTEL["gen_ai.usage.input_tokens"],
            "cache_read": OTEL["gen_ai.usage.cache_read.input_tokens"],
            "output": OTEL["gen_ai.usage.output_tokens"],
        },
        mini_price,
    )
    assert p.value(
        "gen_ai_client_cost_usd_total", **both, gen_ai_operation_name="chat"
    ) == pytest.approx(otel_cost)
    # LiteLLM computed its own cost for this call; chatwatch's from tokens agrees.
    assert p.value("gen_ai_client_cost_usd_total", **both) == pytest.approx(
        LITELLM_OK["response_cost"]
    )


def test_token_usage_and_duration_use_the_buckets_the_spec_gives() -> None:
    assert TOKEN_BUCKETS[:4] == [1, 4, 16, 64] and TOKEN_BUCKETS[-1] == 67108864
    assert len(TOKEN_BUCKETS) == 14
    assert DURATION_BUCKETS[0] == 0.01 and math.isclose(DURATION_BUCKETS[-1], 81.92)
    assert len(DURATION_BUCKETS) == 14
    p = pipeline(metrics_presets=["genai"])
    p.feed(OPENAI_CHAT)
    labels = {"gen_ai_request_model": "gpt-4o-mini-2024-07-18", "gen_ai_token_type": "input"}
    buckets = {
        float(dict(k)["le"]): v
        for k, v in p.series("gen_ai_client_token_usage_bucket").items()
        if labels.items() <= dict(k).items()
    }
    prompt = OPENAI_CHAT["usage"]["prompt_tokens"]
    assert buckets == {le: float(prompt <= le) for le in [*TOKEN_BUCKETS, math.inf]}
    assert "# TYPE gen_ai_client_token_usage histogram" in p.text()


def test_litellm_durations_and_errors_by_error_type() -> None:
    p = pipeline(metrics_presets=["genai"])
    p.feed(LITELLM_OK, LITELLM_FAILED, LITELLM_FAILED)
    labels = {"gen_ai_request_model": "gpt-4o-mini", "gen_ai_system": "openai"}
    assert p.value("gen_ai_client_requests_total", **labels) == 3.0
    # A success's error_information holds empty strings: not an error.
    assert p.value("gen_ai_client_errors_total", **labels, error_type="RateLimitError") == 2.0
    assert p.series("gen_ai_client_errors_total") == {
        frozenset({**labels, "error_type": "RateLimitError"}.items()): 2.0
    }
    name = "gen_ai_client_operation_duration_seconds"
    assert p.value(f"{name}_sum", **labels) == LITELLM_OK["response_time"]
    assert p.value(f"{name}_sum", **labels, error_type="RateLimitError") == pytest.approx(
        2 * LITELLM_FAILED["response_time"]
    )
    assert p.value(f"{name}_bucket", **labels, error_type="RateLimitError", le="0.32") == 2.0
    assert p.value(f"{name}_bucket", **labels, error_type="RateLimitError", le="0.16") == 0.0


def test_otel_error_type_and_no_duration_means_no_duration_metric() -> None:
    p = pipeline(metrics_presets=[{"preset": "genai", "shape": "otel"}])
    p.feed(OTEL, OTEL_ERROR)
    labels = {
        "gen_ai_request_model": "gpt-4o-mini",
        "gen_ai_system": "openai",
        "gen_ai_operation_name": "chat",
    }
    assert p.value("gen_ai_client_requests_total", **labels) == 2.0
    assert p.value("gen_ai_client_errors_total", **labels, error_type="timeout") == 1.0
    assert "gen_ai_client_operation_duration_seconds" not in p.text()
    # The failed call logged no tokens: it is not an observation of 0 tokens.
    assert p.value("gen_ai_client_token_usage_count", **labels, gen_ai_token_type="input") == 1.0
    assert (
        p.value(
            "chatwatch_extract_errors_total",
            metric="gen_ai_client_token_usage",
            reason="missing_value",
        )
        is None
    )


def test_a_shape_names_its_provider_when_the_lines_do_not() -> None:
    p = pipeline(metrics_presets=[{"preset": "genai", "shape": "anthropic"}])
    p.feed(ANTHROPIC, OPENAI_CHAT)
    # The anthropic shape reads `model` too: a ChatCompletion is also an LLM call, but
    # its usage fields are not Anthropic's, so it adds no tokens.
    assert p.series("gen_ai_client_requests_total") == {
        frozenset(
            {"gen_ai_request_model": ANTHROPIC["model"], "gen_ai_system": "anthropic"}.items()
        ): 1.0,
        frozenset(
            {"gen_ai_request_model": OPENAI_CHAT["model"], "gen_ai_system": "anthropic"}.items()
        ): 1.0,
    }
    assert (
        p.value(
            "gen_ai_client_token_usage_count",
            gen_ai_request_model="gpt-4o-mini-2024-07-18",
            gen_ai_system="anthropic",
            gen_ai_token_type="input",
        )
        is None
    )


def test_fields_match_under_and_duration_unit_fit_an_apps_own_line() -> None:
    """A Go service's slog line: its own field names, a nested OpenAI usage object and a
    duration in nanoseconds."""
    line = {
        "msg": "ai request completed",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 2000, "completion_tokens": 500, "total_tokens": 2500},
        "duration": 1_500_000_000,
    }
    failed = {
        "msg": "ai request failed",
        "model": "gpt-4o-mini",
        "status_code": 429,
        "usage": {"prompt_tokens": 1800, "completion_tokens": 0, "total_tokens": 1800},
        "duration": 200_000_000,
    }
    unrelated = {"msg": "cache hit", "model": "answers-v2"}
    p = pipeline(
        metrics_presets=[
            {
                "preset": "genai",
                "shape": "openai",
                "match": {"msg": {"in": ["ai request completed", "ai request failed"]}},
                "fields": {"duration": "duration", "error_type": "status_code"},
                "duration_unit": "ns",
            }
        ],
        pricing=PRICES,
    )
    p.feed(line, failed, unrelated)
    labels = {"gen_ai_request_model": "gpt-4o-mini", "gen_ai_system": "openai"}
    assert p.value("gen_ai_client_requests_total", **labels) == 2.0
    assert p.value("gen_ai_client_errors_total", **labels, error_type="429") == 1.0
    duration = "gen_ai_client_operation_duration_seconds_sum"
    assert p.value(duration, **labels) == pytest.approx(1.5)
    assert p.value(duration, **labels, error_type="429") == pytest.approx(0.2)
    # The failed call's tokens are counted, but a failed call is not billed.
    assert (
        p.value("gen_ai_client_token_usage_sum", **labels, gen_ai_token_type="input") == 2000 + 1800
    )
    assert p.value("gen_ai_client_cost_usd_total", **labels) == pytest.approx(
        usd({"input": 2000, "output": 500}, PRICES["gpt-4o-mini"])
    )
    assert "answers-v2" not in p.text()

    nested = pipeline(
        metrics_presets=[
            {"preset": "genai", "shape": "openai", "under": "response", "match": {"msg": "llm"}}
        ]
    )
    nested.feed({"msg": "llm", "response": OPENAI_CHAT})
    assert (
        nested.value(
            "gen_ai_client_token_usage_sum",
            gen_ai_request_model="gpt-4o-mini-2024-07-18",
            gen_ai_system="openai",
            gen_ai_token_type="input",
        )
        == OPENAI_CHAT["usage"]["prompt_tokens"]
    )


def test_unknown_models_are_counted_not_guessed() -> None:
    p = pipeline(metrics_presets=["genai"], pricing={"gpt-4o-mini": PRICES["gpt-4o-mini"]})
    p.feed(
        {**OPENAI_CHAT, "model": "gpt-4o-mini"},
        {**OPENAI_CHAT, "model": "my-finetune"},
        {**OPENAI_CHAT, "model": "my-finetune"},
        {**OPENAI_CHAT, "model": "gpt-4o-mini-2024-07-18"},  # no pattern in this table
    )
    u = OPENAI_CHAT["usage"]
    tokens = {
        "input": u["prompt_tokens"],
        "cache_read": u["prompt_tokens_details"]["cached_tokens"],
        "output": u["completion_tokens"],
    }
    assert p.series("gen_ai_client_cost_usd_total") == {
        frozenset({"gen_ai_request_model": "gpt-4o-mini"}.items()): pytest.approx(
            usd(tokens, PRICES["gpt-4o-mini"])
        )
    }
    unpriced = "chatwatch_genai_unpriced_total"
    assert p.value(unpriced, metric="gen_ai_client_cost_usd_total", model="my-finetune") == 2.0
    assert (
        p.value(unpriced, metric="gen_ai_client_cost_usd_total", model="gpt-4o-mini-2024-07-18")
        == 1.0
    )
    # Calls are still counted; only their cost is unknown.
    assert p.value("gen_ai_client_requests_total", gen_ai_request_model="my-finetune") == 2.0


def test_without_pricing_the_preset_has_no_cost_metric() -> None:
    names = {m.name for m in config(metrics_presets=["genai"]).metrics}
    assert names == {
        "gen_ai_client_requests_total",
        "gen_ai_client_errors_total",
        "gen_ai_client_token_usage",
        "gen_ai_client_operation_duration_seconds",
    }
    priced = {m.name for m in config(metrics_presets=["genai"], pricing=PRICES).metrics}
    assert priced == names | {"gen_ai_client_cost_usd_total"}


def test_pricing_file_is_read_relative_to_the_config_and_inline_prices_win(tmp_path: Path) -> None:
    (tmp_path / "prices.yaml").write_text(
        "gpt-4o-mini: {input: 1.0, output: 2.0}\n/^claude-/: {input: 3, output: 15}\n"
    )
    cfg = tmp_path / "chatwatch.yaml"
    cfg.write_text(
        "sources: [{name: app, stdin: true}]\n"
        "metrics_presets: [genai]\n"
        "pricing_file: prices.yaml\n"
        "pricing: {gpt-4o-mini: {input: 0.15, output: 0.60}}\n"
    )
    from agent.config import load

    p = GenAIPipeline(*load(cfg).metrics)
    p.feed(
        {"model": "gpt-4o-mini", "usage": {"prompt_tokens": 1000, "completion_tokens": 100}},
        {
            "model": "claude-sonnet-4-20250514",
            "usage": {"input_tokens": 1000, "output_tokens": 100},
        },
    )
    assert p.value(
        "gen_ai_client_cost_usd_total", gen_ai_request_model="gpt-4o-mini"
    ) == pytest.approx(usd({"input": 1000, "output": 100}, {"input": 0.15, "output": 0.60}))
    assert p.value(
        "gen_ai_client_cost_usd_total", gen_ai_request_model="claude-sonnet-4-20250514"
    ) == pytest.approx(usd({"input": 1000, "output": 100}, {"input": 3, "output": 15}))


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        (
            {"metrics_presets": [{"preset": "genai", "fields": {"modle": "m"}}]},
            "metrics_presets[0].fields: unknown field 'modle'",
        ),
        (
            {"metrics_presets": ["genai", "genai"]},
            "metrics_presets[1]: the preset defines gen_ai_client_requests_total, as "
            "metrics_presets[0] does",
        ),
        (
            {
                "metrics": [{"name": "gen_ai_client_requests_total", "type": "counter"}],
                "metrics_presets": ["genai"],
            },
            "metrics_presets[0]: the preset defines gen_ai_client_requests_total, as "
            "metrics[0] does",
        ),
        (
            {
                "metrics": [
                    {
                        "name": "llm_cost_usd_total",
                        "type": "counter",
                        "cost": {"model": "model", "input": "tokens"},
                    }
                ]
            },
            "metrics[0].cost: a cost needs prices: set `pricing:` or `pricing_file:` at the root",
        ),
        (
            {"pricing": {"/^claude-(/": {"input": 1, "output": 2}}},
            "pricing: pricing./^claude-(/: not a valid regular expression",
        ),
        (
            {"pricing": {"gpt-4o": {"input": -1, "output": 2}}},
            "pricing.gpt-4o.input: a price is a number of USD per million tokens, 0 or more",
        ),
        (
            {"pricing_file": "nowhere.yaml"},
            "pricing_file: cannot read",
        ),
        (
            {"metrics_presets": [{"preset": "genai", "fields": {"model": "a + b"}}]},
            "`+` adds numbers",
        ),
    ],
)
def test_config_mistakes_name_the_key(root: dict[str, Any], expected: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as err:
        loads(yaml.safe_dump({"sources": [{"name": "app", "stdin": True}], **root}), "c.yaml")
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_a_hand_written_cost_metric_and_the_calls_it_cannot_cost() -> None:
    p = pipeline(
        metrics=[
            {
                "name": "chatbot_llm_cost_usd_total",
                "type": "counter",
                "match": {"event": "llm_call"},
                "labels": {"model": "model"},
                "cost": {
                    "model": "model",
                    "input": "tokens.in",
                    "output": "tokens.out",
                    "cache_read": "tokens.cached",
                },
            }
        ],
        pricing=PRICES,
    )
    ok = {"event": "llm_call", "model": "gpt-4o-mini", "tokens": {"in": 900, "out": 80}}
    p.feed(
        ok,
        {**ok, "tokens": {"in": 900, "out": 80, "cached": 600}},
        {"event": "llm_call", "tokens": {"in": 900, "out": 80}},  # no model
        {**ok, "tokens": {"in": 100, "out": 80, "cached": 600}},  # more cached than input
        {**ok, "tokens": {}},  # no tokens
    )
    price = PRICES["gpt-4o-mini"]
    expected = usd({"input": 900, "output": 80}, price) + usd(
        {"input": 900, "cache_read": 600, "output": 80}, price
    )
    assert p.value("chatbot_llm_cost_usd_total", model="gpt-4o-mini") == pytest.approx(expected)
    errors = "chatwatch_extract_errors_total"
    name = "chatbot_llm_cost_usd_total"
    assert p.value(errors, metric=name, reason="missing_model") == 1.0
    assert p.value(errors, metric=name, reason="negative_value") == 1.0
    assert p.value(errors, metric=name, reason="missing_value") == 1.0


def test_the_starter_price_table_loads_is_dated_and_prices_dated_snapshots() -> None:
    import datetime as dt
    import re

    from agent.metrics.pricing import PriceTable, read_pricing_file
    from tests.deploy_support import REPO

    path = REPO / "examples" / "pricing.yaml"
    text = path.read_text()
    m = re.search(r"^# Prices as of: (\d{4}-\d\d-\d\d)", text, re.M)
    assert m, "the starter table says when its prices were copied"
    dt.date.fromisoformat(m.group(1))
    assert "REVIEW THIS TABLE" in text
    table = PriceTable(read_pricing_file(path))
    per_million = {
        name: tuple(round(x * 1e6, 6) for x in prices)
        for name in (
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            "gpt-4o-2024-05-13",
            "gpt-4o-2024-08-06",
            "claude-3-5-haiku-20241022",
            "claude-sonnet-4-20250514",
        )
        if (prices := table.lookup(name)) is not None
    }
    # (input, cached input, cache write, output)
    assert per_million == {
        "gpt-4o-mini": (0.15, 0.075, 0.15, 0.6),
        "gpt-4o-mini-2024-07-18": (0.15, 0.075, 0.15, 0.6),
        "gpt-4o-2024-05-13": (5.0, 5.0, 5.0, 15.0),
        "gpt-4o-2024-08-06": (2.5, 1.25, 2.5, 10.0),
        "claude-3-5-haiku-20241022": (0.8, 0.08, 1.0, 4.0),
        "claude-sonnet-4-20250514": (3.0, 0.3, 3.75, 15.0),
    }
    assert table.lookup("gpt-4o-mini-2099-01-01") is None  # a new snapshot: not guessed
