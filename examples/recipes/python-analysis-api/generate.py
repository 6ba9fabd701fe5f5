#!/usr/bin/env python3
"""Sample log of a Python text-analysis API that logs with structlog, for the
python-analysis-api recipe.

The service (a chatbot's backend that analyses messages: sentiment, summaries, entities,
moderation; results cached in Redis, the work done by external APIs) configures structlog
the way its documentation suggests for production:

    structlog.configure(processors=[
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.JSONRenderer(),
    ])
    structlog.contextvars.bind_contextvars(request_id=...)    # per request, by a middleware
    log.info("analysis_completed", analysis_type="sentiment", duration_ms=412.5, cached=False)

so every line is `json.dumps` of the event dict: the call's keyword arguments, `event`,
the bound `request_id`, `level`, then `timestamp` (`datetime.isoformat()`, `Z` for UTC):

    {"analysis_type": "sentiment", "duration_ms": 412.5, "cached": false,
     "event": "analysis_completed", "request_id": "...", "level": "info",
     "timestamp": "2026-01-01T10:00:00.123456Z"}

The events and their fields:

    api_started           host, port (no request_id)
    analysis_requested    analysis_type, text_length, client_id
    cache_hit, cache_miss analysis_type, cache_key
    cache_error           level error: error_type, error (Redis is down: treated as a miss)
    external_api_call     service, model, attempt, status ("success" | "error"),
                          status_code, duration_ms, cost_usd; error_type and error when
                          status is "error" (level warning); a successful OpenAI call
                          also logs the SDK's token usage, `usage` (prompt_tokens,
                          completion_tokens, total_tokens), and its cost_usd is those
                          tokens at OpenAI's list price (LIST_PRICES)
    analysis_completed    analysis_type, duration_ms, cached
    analysis_failed       level error: analysis_type, duration_ms, error_type, error

The story (seconds after --start): healthy, then an OpenAI outage (OUTAGE: most calls fail
with 503s or time out after 10 s, so analyses fail and are slow), healthy again, then a
batch client sends long documents to summarise (COST_SPIKE: no cache hits and expensive
calls), then healthy until the end. Standard library only; the same --seed, --start and
--lines give the same file.

    python examples/recipes/python-analysis-api/generate.py --out sample.log
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

DEFAULT_START = "2026-01-01T10:00:00Z"
DEFAULT_LINES = 3600
DEFAULT_SEED = 11

OUTAGE = (600, 1200)
"""OpenAI answers 90% of calls with a 503 or a 10 s timeout."""
COST_SPIKE = (1800, 2700)
"""A batch client sends long, never-seen documents to summarise."""

MEAN_GAP_S = 4.0  # a request every 4 s on average
CACHE_TTL_S = 1800
TIMEOUT_MS = 10_000

# analysis type -> (weight, service, model, cost per 1000 characters in USD)
TYPES: dict[str, tuple[int, str, str, float]] = {
    "sentiment": (30, "openai", "gpt-4o-mini", 0.0015),
    "summarize": (30, "openai", "gpt-4o", 0.004),
    "entities": (25, "google_nlp", "analyzeEntities", 0.001),
    "moderation": (15, "perspective", "TOXICITY", 0.0),
}
CLIENTS = ["chatbot-web", "chatbot-slack", "chatbot-whatsapp"]

LIST_PRICES = {"gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}
"""USD per million (prompt, completion) tokens: what the service bills OpenAI calls at."""
SYSTEM_PROMPT_TOKENS = {"sentiment": 120, "summarize": 600}
"""The instructions sent before the user's text."""


def _usage(seed: int, rid: str, attempt: int, kind: str, length: int) -> dict[str, int]:
    """The token usage OpenAI reports for one call: about 4 characters a token, plus the
    instructions; a label for sentiment, a summary of about a quarter for summarize. Drawn
    from its own generator, so adding it left every other line of the log as it was."""
    rng = random.Random(f"{seed}/{rid}/{attempt}")
    text = round(length / rng.uniform(3.6, 4.4))
    prompt = SYSTEM_PROMPT_TOKENS[kind] + text
    completion = rng.randint(2, 12) if kind == "sentiment" else round(text * rng.uniform(0.2, 0.3))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _stamp(when: dt.datetime) -> str:
    """TimeStamper(fmt="iso", utc=True): isoformat() with Z (no fraction when it is 0)."""
    return when.isoformat().replace("+00:00", "Z")


def _line(when: dt.datetime, level: str, event: str, request_id: str | None, **kw: Any) -> str:
    """What JSONRenderer prints: keyword arguments, event, context, level, timestamp."""
    event_dict: dict[str, Any] = {**kw, "event": event}
    if request_id is not None:
        event_dict["request_id"] = request_id
    event_dict["level"] = level
    event_dict["timestamp"] = _stamp(when)
    return json.dumps(event_dict)


class _Writer:
    def __init__(self, start: dt.datetime) -> None:
        self.start = start
        self.records: list[tuple[int, int, str]] = []  # (time in µs, sequence, line)

    def emit(self, t_us: int, level: str, event: str, request_id: str | None, **kw: Any) -> None:
        when = self.start + dt.timedelta(microseconds=t_us)
        self.records.append((t_us, len(self.records), _line(when, level, event, request_id, **kw)))


def _in(t_s: float, span: tuple[int, int]) -> bool:
    return span[0] <= t_s < span[1]


def _call(
    rng: random.Random, t_s: float, service: str, length: int, per_1000: float
) -> tuple[str, int, float, float, str | None, str | None]:
    """(status, status_code, duration_ms, cost_usd, error_type, error) of one API call."""
    outage = service == "openai" and _in(t_s, OUTAGE)
    if rng.random() < (0.9 if outage else 0.01):
        if rng.random() < 0.5:
            return "error", 504, float(TIMEOUT_MS), 0.0, "APITimeoutError", "Request timed out."
        if service == "openai" and not outage:
            return (
                "error",
                429,
                round(rng.uniform(40, 200), 1),
                0.0,
                "RateLimitError",
                ("Rate limit reached for requests"),
            )
        return (
            "error",
            503,
            round(rng.uniform(50, 300), 1),
            0.0,
            "InternalServerError",
            ("Service Unavailable"),
        )
    base = 250 if service == "openai" else 120
    took = base + length * rng.uniform(0.05, 0.12) + rng.uniform(0, 400)
    cost = round(length / 1000 * per_1000 * rng.uniform(0.9, 1.1), 6)
    return "success", 200, round(took, 1), cost, None, None


def generate(start: dt.datetime, lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = _Writer(start)
    out.emit(0, "info", "api_started", None, host="0.0.0.0", port=8000)
    cache: dict[str, float] = {}  # key -> when it expires (seconds)
    t_us = 0
    while len(out.records) < lines + 200:  # enough that the first `lines` are all final
        t_us += max(1, round(rng.expovariate(1 / MEAN_GAP_S) * 1e6))
        t_s = t_us / 1e6
        rid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        batch = _in(t_s, COST_SPIKE) and rng.random() < 0.7
        if batch:
            kind, length, text_id = "summarize", rng.randint(8_000, 14_000), rng.getrandbits(64)
            client = "batch-importer"
        else:
            kind = rng.choices(list(TYPES), [v[0] for v in TYPES.values()])[0]
            length = rng.randint(40, 1500)
            text_id = rng.randrange(80)  # chat messages repeat: FAQs, greetings
            client = rng.choice(CLIENTS)
        _, service, model, per_1000 = TYPES[kind]
        key = f"analysis:{kind}:{hashlib.sha1(str(text_id).encode()).hexdigest()[:16]}"
        out.emit(
            t_us,
            "info",
            "analysis_requested",
            rid,
            analysis_type=kind,
            text_length=length,
            client_id=client,
        )
        now = t_us + rng.randrange(200, 1500)

        if length > 1400 and not batch and rng.random() < 0.5:  # over the API's limit
            took = (now - t_us) / 1000
            out.emit(
                now,
                "error",
                "analysis_failed",
                rid,
                analysis_type=kind,
                duration_ms=round(took, 1),
                error_type="ValidationError",
                error="text longer than 1400 characters",
            )
            continue
        cached = False
        if rng.random() < 0.003:
            out.emit(
                now,
                "error",
                "cache_error",
                rid,
                error_type="ConnectionError",
                error="Error 111 connecting to redis:6379. Connection refused.",
            )
        elif cache.get(key, 0.0) > t_s:
            out.emit(now, "info", "cache_hit", rid, analysis_type=kind, cache_key=key)
            cached = True
        else:
            out.emit(now, "info", "cache_miss", rid, analysis_type=kind, cache_key=key)
        now += rng.randrange(300, 3000)

        error: tuple[str, str] | None = None
        if not cached:
            for attempt in (1, 2):
                status, code, ms, cost, error_type, text = _call(
                    rng, now / 1e6, service, length, per_1000
                )
                now += round(ms * 1000)
                fields: dict[str, Any] = {
                    "service": service,
                    "model": model,
                    "attempt": attempt,
                    "status": status,
                    "status_code": code,
                    "duration_ms": ms,
                }
                if service == "openai" and status == "success":
                    usage = _usage(seed, rid, attempt, kind, length)
                    per_prompt, per_completion = LIST_PRICES[model]
                    fields["usage"] = usage
                    cost = round(
                        (
                            usage["prompt_tokens"] * per_prompt
                            + usage["completion_tokens"] * per_completion
                        )
                        / 1e6,
                        6,
                    )
                fields["cost_usd"] = cost
                if status == "error":
                    assert error_type is not None and text is not None
                    fields |= {"error_type": error_type, "error": text}
                    out.emit(now, "warning", "external_api_call", rid, **fields)
                    error = (error_type, text)
                    now += rng.randrange(100_000, 500_000)  # back off before the retry
                    continue
                out.emit(now, "info", "external_api_call", rid, **fields)
                error = None
                cache[key] = t_s + CACHE_TTL_S
                break
        now += rng.randrange(500, 5000)
        took = round((now - t_us) / 1000, 1)
        if error is None:
            out.emit(
                now,
                "info",
                "analysis_completed",
                rid,
                analysis_type=kind,
                duration_ms=took,
                cached=cached,
            )
        else:
            out.emit(
                now,
                "error",
                "analysis_failed",
                rid,
                analysis_type=kind,
                duration_ms=took,
                error_type=error[0],
                error=error[1],
            )

    out.records.sort()
    return [line for _, _, line in out.records[:lines]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="sample.log", help="file to write, - for stdout")
    p.add_argument("--lines", type=int, default=DEFAULT_LINES, help="lines to write")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    p.add_argument("--start", default=DEFAULT_START, help="ISO time of the first line")
    args = p.parse_args(argv)
    start = dt.datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    lines = generate(start.astimezone(dt.UTC), args.lines, args.seed)
    text = "".join(line + "\n" for line in lines)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
