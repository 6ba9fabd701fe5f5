"""The reference workload: a chatbot's JSON log and the 9 metric definitions over it.

200k lines by default, deterministic (seeded): HTTP requests 70%, LLM calls 22%,
conversation outcomes 5%, auth failures 3%, about 250 bytes a line. `expected_counts()`
recomputes, from the same seed, what the metrics must show, so each contender's output
can be checked, not only timed.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROUTES = [
    "/api/chat",
    "/api/chat/stream",
    "/api/sessions",
    "/api/feedback",
    "/healthz",
    "/api/history",
]
STATUSES = [200] * 90 + [201] * 3 + [400] * 2 + [401, 404, 429, 500, 503]
METHODS = ["POST", "POST", "GET"]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-haiku", "llama-3-70b"]
CATEGORIES = ["billing", "login", "shipping", "refund", "other"]
RESOLUTIONS = ["resolved"] * 6 + ["escalated"] * 3 + ["abandoned"]
AUTH_REASONS = ["invalid_token", "expired_token", "missing_token", "bad_signature"]
LEVELS_HTTP = ["info"] * 95 + ["warning"] * 4 + ["error"]

HISTOGRAM_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

METRICS: list[dict[str, Any]] = [
    {
        "name": "chatbot_http_requests_total",
        "type": "counter",
        "help": "HTTP requests handled by the chatbot.",
        "match": {"event": "http_request"},
        "labels": {"route": "route", "status_code": "status_code"},
    },
    {
        "name": "chatbot_http_request_duration_seconds",
        "type": "histogram",
        "help": "HTTP request duration.",
        "match": {"event": "http_request"},
        "value": "duration_ms",
        "scale": 0.001,
        "buckets": HISTOGRAM_BUCKETS,
        "labels": {"route": "route"},
    },
    {
        "name": "chatbot_llm_prompt_tokens_total",
        "type": "counter",
        "help": "LLM prompt tokens.",
        "match": {"event": "llm_call"},
        "value": "usage.prompt_tokens",
        "labels": {"model": "model"},
    },
    {
        "name": "chatbot_llm_completion_tokens_total",
        "type": "counter",
        "help": "LLM completion tokens.",
        "match": {"event": "llm_call"},
        "value": "usage.completion_tokens",
        "labels": {"model": "model"},
    },
    {
        "name": "chatbot_llm_cost_usd_total",
        "type": "counter",
        "help": "LLM cost in US dollars.",
        "match": {"event": "llm_call"},
        "value": "cost_usd",
        "labels": {"model": "model"},
    },
    {
        "name": "chatbot_llm_latency_seconds",
        "type": "histogram",
        "help": "LLM call latency.",
        "match": {"event": "llm_call"},
        "value": "latency_ms",
        "scale": 0.001,
        "buckets": HISTOGRAM_BUCKETS,
        "labels": {"model": "model"},
    },
    {
        "name": "chatbot_conversations_total",
        "type": "counter",
        "help": "Conversations ended, by category and resolution.",
        "match": {"event": "conversation_ended"},
        "labels": {"category": "category", "resolution": "resolution"},
    },
    {
        "name": "chatbot_auth_failures_total",
        "type": "counter",
        "help": "Authentication failures by reason.",
        "match": {"event": "auth_failed"},
        "labels": {"reason": "reason"},
    },
    {
        "name": "chatbot_log_events_total",
        "type": "counter",
        "help": "Log events by level and event name.",
        "labels": {"level": "level", "event": "event"},
    },
]


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(n * 4):0{n}x}"


def make_event(rng: random.Random, i: int) -> dict[str, Any]:
    """One log record; key order is fixed (mtail's regexes rely on it)."""
    ts = f"2026-11-23T09:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
    r = rng.random()
    if r < 0.70:
        return {
            "ts": ts,
            "level": rng.choice(LEVELS_HTTP),
            "event": "http_request",
            "request_id": _hex(rng, 16),
            "method": rng.choice(METHODS),
            "route": rng.choice(ROUTES),
            "status_code": rng.choice(STATUSES),
            "duration_ms": round(rng.lognormvariate(4.5, 1.0), 3),
            "session_id": _hex(rng, 12),
            "user_agent": "chat-widget/2.4.1 (Linux x86_64)",
            "bytes_out": rng.randint(200, 40000),
        }
    if r < 0.92:
        prompt = rng.randint(50, 4000)
        completion = rng.randint(10, 800)
        return {
            "ts": ts,
            "level": "info",
            "event": "llm_call",
            "request_id": _hex(rng, 16),
            "model": rng.choice(MODELS),
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            "cost_usd": round((prompt * 0.15 + completion * 0.6) / 1e6, 8),
            "latency_ms": round(rng.lognormvariate(6.5, 0.7), 3),
            "status": "ok",
            "session_id": _hex(rng, 12),
        }
    if r < 0.97:
        return {
            "ts": ts,
            "level": "info",
            "event": "conversation_ended",
            "request_id": _hex(rng, 16),
            "session_id": _hex(rng, 12),
            "category": rng.choice(CATEGORIES),
            "resolution": rng.choice(RESOLUTIONS),
            "turns": rng.randint(1, 30),
            "duration_s": rng.randint(5, 1800),
            "channel": "web",
        }
    return {
        "ts": ts,
        "level": "warning",
        "event": "auth_failed",
        "request_id": _hex(rng, 16),
        "reason": rng.choice(AUTH_REASONS),
        "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "user_agent": "chat-widget/2.4.1 (Linux x86_64)",
        "path": "/api/chat",
    }


def write_log(path: Path, lines: int = 200_000, seed: int = 42) -> int:
    """Write the workload; returns the number of bytes written."""
    rng = random.Random(seed)
    size = 0
    with path.open("wb") as f:
        chunk = []
        for i in range(lines):
            chunk.append(orjson.dumps(make_event(rng, i)))
            if len(chunk) == 4096:
                data = b"\n".join(chunk) + b"\n"
                f.write(data)
                size += len(data)
                chunk.clear()
        if chunk:
            data = b"\n".join(chunk) + b"\n"
            f.write(data)
            size += len(data)
    return size


@dataclass
class Expected:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    llm_prompt_tokens: Counter[str] = field(default_factory=Counter)
    conversations: Counter[tuple[str, str]] = field(default_factory=Counter)
    auth_failures: Counter[str] = field(default_factory=Counter)
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    duration_count: Counter[str] = field(default_factory=Counter)


def expected_counts(lines: int = 200_000, seed: int = 42) -> Expected:
    rng = random.Random(seed)
    exp = Expected()
    for i in range(lines):
        ev = make_event(rng, i)
        name = ev["event"]
        exp.events[(ev["level"], name)] += 1
        if name == "http_request":
            exp.requests[(ev["route"], str(ev["status_code"]))] += 1
            exp.duration_count[ev["route"]] += 1
        elif name == "llm_call":
            exp.llm_prompt_tokens[ev["model"]] += ev["usage"]["prompt_tokens"]
        elif name == "conversation_ended":
            exp.conversations[(ev["category"], ev["resolution"])] += 1
        else:
            exp.auth_failures[ev["reason"]] += 1
    return exp


MTAIL = shutil.which("mtail") or "/usr/bin/mtail"
MTAIL_PROGS = Path(__file__).resolve().parent / "mtail"


def mtail_command(log: Path, port: int, progs: Path = MTAIL_PROGS, *extra: str) -> list[str]:
    """mtail on `log` with the reference programs (or `progs`), serving on 127.0.0.1."""
    return [
        MTAIL, "--progs", str(progs), "--logs", str(log), "--address", "127.0.0.1",
        "--port", str(port), "--logtostderr=false", "--stderrthreshold=ERROR", *extra,
    ]  # fmt: skip
