#!/usr/bin/env python3
"""Sample log of a Node.js chatbot service that logs with winston, for the node-winston recipe.

The service's logger is the usual one:

    const logger = winston.createLogger({
      format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
      defaultMeta: { service: 'chatbot' },
      transports: [new winston.transports.File({ filename: 'chatbot.log' })],
    });

so every line is one JSON object with its keys sorted (winston's json format uses
safe-stable-stringify), no spaces, and `timestamp` from `Date.prototype.toISOString()`:

    {"level":"info","message":"Message received","service":"chatbot","sessionId":"...",
     "timestamp":"2026-01-01T10:00:00.123Z","type":"question","urgency":"low","userId":"..."}

The lines the service writes (`message`, then its metadata):

    Chatbot service listening   port
    Session started             sessionId, userId
    Message received            sessionId, userId, type, urgency
    Request completed           method, route, statusCode, processingTime (ms), sessionId,
                                userId (level warn when statusCode is 5xx)
    Failed to process message   level error: component, errorType, error, sessionId, userId
    Session ended               sessionId, userId, messages

The story (seconds after --start, see PHASES): a healthy service, then a bad spell where
the LLM behind it times out and rate-limits (many errors, slow answers), a recovery, then
the event loop hangs and nothing is logged for 7 minutes, then the service carries on.
Standard library only; the same --seed, --start and --lines give the same file.

    python examples/recipes/node-winston/generate.py --out sample.log
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

DEFAULT_START = "2026-01-01T10:00:00Z"
DEFAULT_LINES = 2600
DEFAULT_SEED = 7

BAD_SPELL = (600, 1140)
"""The LLM times out and rate-limits: about 20% of messages fail, 60% are slow (2.5-9 s)."""
SILENCE = (1800, 2220)
"""The event loop is blocked: not a single line between these times."""

MEAN_GAP_S = 2.0  # a user message every 2 s on average
ROUTE = "/api/chat/message"

TYPES = [("question", 55), ("smalltalk", 20), ("complaint", 15), ("feedback", 10)]
URGENCY = [("low", 60), ("medium", 30), ("high", 10)]
# component, errorType, error text, weight in the bad spell
ERRORS = [
    ("llm", "TimeoutError", "LLM request timed out after 30000ms", 50),
    ("llm", "RateLimitError", "429 Too Many Requests from the LLM provider", 30),
    ("database", "MongoServerSelectionError", "Server selection timed out after 5000 ms", 10),
    ("intent-classifier", "ValidationError", "Intent payload failed schema validation", 10),
]
STATUS_OF = {
    "TimeoutError": 504,
    "RateLimitError": 503,
    "MongoServerSelectionError": 500,
    "ValidationError": 500,
}


def _pick(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def _in(t_ms: int, span: tuple[int, int]) -> bool:
    return span[0] * 1000 <= t_ms < span[1] * 1000


def _line(start: dt.datetime, t_ms: int, level: str, message: str, **meta: Any) -> str:
    """What winston's timestamp() + json() print: sorted keys, no spaces, ms in UTC."""
    when = start + dt.timedelta(milliseconds=t_ms)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    info = {"level": level, "message": message, "service": "chatbot", "timestamp": stamp, **meta}
    return json.dumps(info, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def generate(start: dt.datetime, lines: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    records: list[tuple[int, int, str]] = []  # (time ms, sequence, line): sorted by time

    def emit(t_ms: int, level: str, message: str, **meta: Any) -> None:
        records.append((t_ms, len(records), _line(start, t_ms, level, message, **meta)))

    emit(0, "info", "Chatbot service listening", port=3000)
    sessions: dict[str, dict[str, Any]] = {}
    t_ms = 0
    while len(records) < lines + 200:  # enough that the first `lines` are all final
        t_ms += max(1, round(rng.expovariate(1 / MEAN_GAP_S) * 1000))
        if SILENCE[0] * 1000 - 40_000 <= t_ms < SILENCE[1] * 1000:
            t_ms = SILENCE[1] * 1000 + rng.randrange(100, 900)  # nothing in flight hangs

        # A message in an open session, or a new session (2-8 messages each, about 8 open).
        if len(sessions) < rng.randint(4, 12):
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            user = f"user_{rng.randrange(1, 400):04d}"
            sessions[sid] = {"userId": user, "left": rng.randint(2, 8), "sent": 0}
            emit(t_ms, "info", "Session started", sessionId=sid, userId=user)
            t_ms += rng.randrange(5, 60)
        else:
            sid = rng.choice(sorted(sessions))
        session = sessions[sid]
        user = session["userId"]
        kind = _pick(rng, TYPES)
        urgency = "high" if kind == "complaint" and rng.random() < 0.4 else _pick(rng, URGENCY)
        emit(
            t_ms, "info", "Message received", sessionId=sid, userId=user, type=kind, urgency=urgency
        )

        bad = _in(t_ms, BAD_SPELL)
        if rng.random() < (0.2 if bad else 0.01):
            component, error_type, text, _ = rng.choices(ERRORS, [e[3] for e in ERRORS])[0]
            took = 30_000 if error_type == "TimeoutError" else rng.randrange(150, 2500)
            done = t_ms + took
            emit(
                done,
                "error",
                "Failed to process message",
                component=component,
                errorType=error_type,
                error=text,
                sessionId=sid,
                userId=user,
            )
            status = STATUS_OF[error_type]
        else:
            if bad and rng.random() < 0.6:
                took = rng.randrange(2500, 9000)
            else:
                took = min(1800, max(120, round(rng.lognormvariate(6.3, 0.45))))
            done = t_ms + took
            status = 200
        emit(
            done,
            "warn" if status >= 500 else "info",
            "Request completed",
            method="POST",
            route=ROUTE,
            statusCode=status,
            processingTime=took,
            sessionId=sid,
            userId=user,
        )

        session["sent"] += 1
        if session["sent"] >= session["left"]:
            del sessions[sid]
            emit(
                done + rng.randrange(200, 3000),
                "info",
                "Session ended",
                sessionId=sid,
                userId=user,
                messages=session["sent"],
            )

    records.sort()
    return [line for _, _, line in records[:lines]]


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
    text = "".join(
        line + "\n" for line in generate(start.astimezone(dt.UTC), args.lines, args.seed)
    )
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
