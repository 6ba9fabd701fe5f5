"""Recipe examples/recipes/python-analysis-api: a Python analysis API logging structlog JSON,
replayed through the recipe's config and rules with the real CLI.

Expectations come from the sample log itself (parsed here, independently of chatwatch)
and from the generator's schedule (`OUTAGE`, `COST_SPIKE`, which analysis types use which
service), never from chatwatch's own output.

What every recipe promises (the sample is what generate.py writes, `chatwatch check` and
the receiver URLs it needs, promtool, the rule unit tests, runbooks) is in test_recipes.py."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy_support import REPO
from tests.recipe_support import chatwatch, load_generator

RECIPE = REPO / "examples" / "recipes" / "python-analysis-api"
SAMPLE = RECIPE / "sample.log"
CONFIG = RECIPE / "chatwatch.yaml"
ENV = {**os.environ, "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack-not-used-by-replay"}
TIMELINE = re.compile(r"^(\S+)\s+(FIRING|RESOLVED)\s+(\w+)\{([^}]*)\}")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


GEN = load_generator(RECIPE)
START = dt.datetime.fromisoformat(GEN.DEFAULT_START)
MINUTE = dt.timedelta(minutes=1)


def _at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def _chatwatch(*args: str) -> subprocess.CompletedProcess[str]:
    return chatwatch(*args, env=ENV)


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]


# -- the sample log -------------------------------------------------------------------------


def test_lines_are_what_structlog_prints_for_the_same_calls() -> None:
    """Each line, taken apart into a log call (method, event, keyword arguments, bound
    request_id), is printed back identically by structlog's real processors:
    merge_contextvars, add_log_level, then JSONRenderer; the timestamp is TimeStamper's
    `fmt="iso", utc=True` shape."""
    structlog = pytest.importorskip("structlog")
    from structlog.contextvars import bind_contextvars, clear_contextvars

    out = io.StringIO()
    stamp: dict[str, str] = {}

    def timestamper(logger: Any, name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["timestamp"] = stamp["value"]  # TimeStamper's place in the chain
        return event_dict

    log = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.JSONRenderer(),
        ],
    )
    raws = SAMPLE.read_text(encoding="utf-8").splitlines()
    try:
        for raw in raws:
            kw = json.loads(raw)
            stamp["value"] = kw.pop("timestamp")
            assert ISO_UTC.match(stamp["value"]), raw
            level, event, request_id = kw.pop("level"), kw.pop("event"), kw.pop("request_id", None)
            clear_contextvars()
            if request_id is not None:
                bind_contextvars(request_id=request_id)
            getattr(log, level)(event, **kw)
    finally:
        clear_contextvars()
    assert out.getvalue().splitlines() == raws


# -- replay through the real CLI ------------------------------------------------------------

Labels = frozenset[tuple[str, str]]


@dataclass
class Replayed:
    timeline: list[tuple[dt.datetime | None, str, str, dict[str, str]]]
    """(time or None for "(end)", FIRING|RESOLVED, alertname, labels) in order."""
    metrics: dict[str, dict[Labels, float]]

    def events(self, alertname: str, **labels: str) -> list[tuple[dt.datetime | None, str]]:
        return [
            (t, state)
            for t, state, name, lb in self.timeline
            if name == alertname and labels.items() <= lb.items()
        ]

    def by(self, metric: str, *names: str) -> dict[tuple[str, ...], float]:
        """The metric's values keyed by the given label values."""
        return {tuple(dict(k)[n] for n in names): v for k, v in self.metrics[metric].items()}


@pytest.fixture(scope="module")
def replayed() -> Replayed:
    result = _chatwatch("replay", "-c", str(CONFIG), str(SAMPLE))
    assert result.returncode == 0, result.stderr[-2000:]
    timeline: list[tuple[dt.datetime | None, str, str, dict[str, str]]] = []
    for line in result.stdout.splitlines():
        m = TIMELINE.match(line)
        if m:
            when = None if m.group(1) == "(end)" else dt.datetime.fromisoformat(m.group(1))
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(4)))
            timeline.append((when, m.group(2), m.group(3), labels))
    _, _, exposition = result.stdout.partition("\n# replayed ")
    assert exposition, result.stdout[-2000:]
    metrics: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(exposition.partition("\n\n")[2]):
        for s in family.samples:
            metrics.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return Replayed(timeline, metrics)


def _count(lines: list[dict[str, Any]], event: str, *fields: str) -> Counter[tuple[str, ...]]:
    return Counter(tuple(str(ln[f]) for f in fields) for ln in lines if ln["event"] == event)


def test_replay_counts_requests_outcomes_and_cache_as_logged(replayed: Replayed) -> None:
    lines = _lines()
    kinds = ("analysis_type",)
    assert replayed.by("analysis_requests_total", *kinds) == _count(
        lines, "analysis_requested", *kinds
    )
    assert replayed.by("analysis_requests_success_total", *kinds) == _count(
        lines, "analysis_completed", *kinds
    )
    failed = _count(lines, "analysis_failed", "analysis_type", "error_type")
    assert {e for _, e in failed} >= {"ValidationError", "APITimeoutError", "InternalServerError"}
    assert replayed.by("analysis_requests_failed_total", "analysis_type", "error_type") == failed
    assert replayed.by("analysis_cache_hits_total", *kinds) == _count(lines, "cache_hit", *kinds)
    assert replayed.by("analysis_cache_misses_total", *kinds) == _count(lines, "cache_miss", *kinds)
    errors = Counter((ln["error_type"],) for ln in lines if ln["level"] == "error")
    assert ("ConnectionError",) in errors  # Redis, logged by cache_error
    assert replayed.by("analysis_errors_total", "error_type") == errors


def _histogram(replayed: Replayed, name: str, label: str, observed: dict[str, list[float]]) -> None:
    assert replayed.by(f"{name}_count", label) == {(k,): len(v) for k, v in observed.items()}
    sums = replayed.by(f"{name}_sum", label)
    assert sums == {(k,): pytest.approx(sum(v)) for k, v in observed.items()}
    buckets: dict[str, dict[float, float]] = defaultdict(dict)
    for labels, value in replayed.metrics[f"{name}_bucket"].items():
        d = dict(labels)
        buckets[d[label]][float(d["le"])] = value
    for key, values in observed.items():
        assert buckets[key] == {le: sum(1 for v in values if v <= le) for le in buckets[key]}


def test_replay_histograms_hold_every_duration_logged(replayed: Replayed) -> None:
    executions: dict[str, list[float]] = defaultdict(list)
    calls: dict[str, list[float]] = defaultdict(list)
    for ln in _lines():
        if ln["event"] in ("analysis_completed", "analysis_failed"):
            executions[ln["analysis_type"]].append(ln["duration_ms"] / 1000)
        elif ln["event"] == "external_api_call":
            calls[ln["service"]].append(ln["duration_ms"] / 1000)
    _histogram(replayed, "analysis_execution_duration_seconds", "analysis_type", executions)
    _histogram(replayed, "analysis_external_api_duration_seconds", "service", calls)


def test_replay_counts_external_calls_and_adds_up_their_cost(replayed: Replayed) -> None:
    lines = _lines()
    calls = _count(lines, "external_api_call", "service", "status")
    assert ("openai", "error") in calls
    assert replayed.by("analysis_external_api_calls_total", "service", "status") == calls
    cost: dict[tuple[str, ...], float] = defaultdict(float)
    for ln in lines:
        if ln["event"] == "external_api_call":
            cost[(ln["service"],)] += ln["cost_usd"]
    assert cost[("openai",)] > 1
    assert replayed.by("analysis_external_api_cost_usd_total", "service") == {
        k: pytest.approx(v) for k, v in cost.items()
    }


def test_replay_gives_the_openai_calls_genai_metrics_and_their_cost_from_tokens(
    replayed: Replayed,
) -> None:
    """The genai preset over the OpenAI calls: calls and errors by model, tokens by type,
    and the cost worked out from the logged tokens and the config's prices, which is what
    the service itself billed (`cost_usd`)."""
    openai = [
        ln for ln in _lines() if ln["event"] == "external_api_call" and ln["service"] == "openai"
    ]
    prices = yaml.safe_load(CONFIG.read_text())["pricing"]

    def by_model(metric: str, **labels: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, value in replayed.metrics[metric].items():
            d = {k: v for k, v in key if v}
            if d.pop("gen_ai_system") == "openai" and labels.items() <= d.items():
                out[d["gen_ai_request_model"]] = out.get(d["gen_ai_request_model"], 0) + value
        return out

    models = Counter(ln["model"] for ln in openai)
    assert set(models) == {"gpt-4o", "gpt-4o-mini"}
    assert by_model("gen_ai_client_requests_total") == dict(models)
    errors = Counter((ln["model"], ln["error_type"]) for ln in openai if ln["status"] == "error")
    assert {e for _, e in errors} >= {"APITimeoutError", "InternalServerError"}
    for (model, error_type), n in errors.items():
        assert by_model("gen_ai_client_errors_total", error_type=error_type)[model] == n

    ok = [ln for ln in openai if ln["status"] == "success"]
    for kind, field in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        tokens: dict[str, float] = defaultdict(float)
        for ln in ok:
            tokens[ln["model"]] += ln["usage"][field]
        assert by_model("gen_ai_client_token_usage_sum", gen_ai_token_type=kind) == tokens

    cost: dict[str, float] = defaultdict(float)
    billed: dict[str, float] = defaultdict(float)
    for ln in ok:
        price = prices[ln["model"]]
        usage = ln["usage"]
        cost[ln["model"]] += (
            usage["prompt_tokens"] * price["input"] + usage["completion_tokens"] * price["output"]
        ) / 1e6
        billed[ln["model"]] += ln["cost_usd"]
    got = by_model("gen_ai_client_cost_usd_total")
    assert got == {m: pytest.approx(c) for m, c in cost.items()}
    for model, total in billed.items():  # the service rounds each call to a millionth
        assert got[model] == pytest.approx(total, abs=1e-6 * len(ok))


def test_replay_alerts_fire_in_the_outage_and_the_batch_and_resolve(replayed: Replayed) -> None:
    outage = (_at(GEN.OUTAGE[0]), _at(GEN.OUTAGE[1]))
    batch = (_at(GEN.COST_SPIKE[0]), _at(GEN.COST_SPIKE[1]))
    for when, state, name, labels in replayed.timeline:
        assert when is not None, f"{name}{labels} still firing at the end of the log"
        if state == "FIRING":
            assert outage[0] < when < outage[1] or batch[0] < when < batch[1], (
                f"{name}{labels} fired at {when}, outside the outage and the batch"
            )

    def fires_then_resolves(
        name: str, fired_in: tuple[dt.datetime, dt.datetime], resolved_by: dt.datetime, **lb: str
    ) -> None:
        (fired, f_state), (resolved, r_state) = replayed.events(name, **lb)
        assert (f_state, r_state) == ("FIRING", "RESOLVED")
        assert fired is not None and resolved is not None
        assert fired_in[0] < fired < fired_in[1], (name, lb, fired)
        assert fired_in[1] < resolved <= resolved_by, (name, lb, resolved)

    o0, o1 = outage
    fires_then_resolves(
        "ExternalAPIErrors", (o0 + 2 * MINUTE, o1), o1 + 8 * MINUTE, service="openai"
    )
    fires_then_resolves("AnalysisFailureRatioHigh", (o0 + 2 * MINUTE, o1), o1 + 8 * MINUTE)
    on_openai = sorted(k for k, (_, service, _, _) in GEN.TYPES.items() if service == "openai")
    for kind in on_openai:
        fires_then_resolves(
            "AnalysisSlowExecutions", (o0 + 5 * MINUTE, o1), o1 + 8 * MINUTE, analysis_type=kind
        )
    b0, b1 = batch
    fires_then_resolves("ExternalAPICostHigh", (b0 + 5 * MINUTE, b1), b1 + 12 * MINUTE)

    fired = {(name, tuple(sorted(lb.items()))) for _, _, name, lb in replayed.timeline}
    assert fired == {
        ("ExternalAPIErrors", (("service", "openai"), ("severity", "warning"))),
        ("AnalysisFailureRatioHigh", (("severity", "critical"),)),
        *(
            ("AnalysisSlowExecutions", (("analysis_type", k), ("severity", "warning")))
            for k in on_openai
        ),
        ("ExternalAPICostHigh", (("severity", "warning"),)),
    }, "an analysis type or a service that stayed healthy raised an alert"
