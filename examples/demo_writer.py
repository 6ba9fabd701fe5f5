#!/usr/bin/env python3
"""A pretend LLM chatbot that writes realistic JSON log lines, for demos and tests.

Standard library only, so it runs anywhere Python does:

    python examples/demo_writer.py                       # demo/chatbot.log, ~20 lines/s
    python examples/demo_writer.py --out - | chatwatch run -c stdin.yaml
    python examples/demo_writer.py --lines 10000 --rate 0 --seed 1 --out /tmp/bot.log

One JSON object per line. Every line has `ts` (ISO 8601, UTC, ms), `level`, `logger`,
`event` and `message`; the events and their fields:

    http_request        route, method, status_code (int), duration_ms, request_id,
                        session_id (chat routes), error (on 5xx)
    llm_call            model, provider, usage.{prompt_tokens,completion_tokens,total_tokens},
                        cost_usd, duration_ms, status ("ok" | "error"), error_type (on error),
                        request_id, session_id
    session_started     session_id, channel
    session_ended       session_id, channel, duration_s, messages
    conversation_ended  session_id, category, resolution ("resolved" | "escalated" |
                        "abandoned"), turns
    auth_failure        reason, route, client_ip

Time is logical: line i is stamped `start + i / rate`, and the writer sleeps until that
moment (so stamps follow the wall clock while it keeps up). `--first-burst` seconds in
(default 60), then every `--burst-every` seconds (default 8 min), for `--burst-length`
seconds (default 60), the bot has a bad spell: many 5xx, slow requests, failing LLM calls
and a run of auth failures. The defaults make the bundled rule pack (rules/chatbot.yml)
fire a few minutes in and resolve before the next spell. With `--seed` and `--start` the
output is identical on every run. SIGTERM/SIGINT finish the current line, close the file
and exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

Event = dict[str, Any]

# route, method, share of http traffic, median latency (ms), ok status
ROUTES: list[tuple[str, str, float, float, int]] = [
    ("/api/chat", "POST", 0.55, 600.0, 200),
    ("/api/sessions", "POST", 0.08, 40.0, 201),
    ("/api/history", "GET", 0.15, 35.0, 200),
    ("/api/feedback", "POST", 0.07, 25.0, 204),
    ("/healthz", "GET", 0.15, 2.0, 200),
]

# model, provider, share of calls, USD per 1k prompt tokens, per 1k completion tokens,
# median latency (ms)
MODELS: list[tuple[str, str, float, float, float, float]] = [
    ("gpt-4o-mini", "openai", 0.9, 0.00015, 0.0006, 700.0),
    ("gpt-4o", "openai", 0.07, 0.0025, 0.01, 1400.0),
    ("claude-3-5-sonnet", "anthropic", 0.03, 0.003, 0.015, 1600.0),
]

CATEGORIES = ["billing", "login", "password_reset", "order_status", "technical", "other"]
CHANNELS = ["web", "mobile", "slack"]
AUTH_REASONS = [
    ("invalid_token", 0.5),
    ("expired_token", 0.3),
    ("missing_token", 0.15),
    ("bad_signature", 0.05),
]
LLM_ERRORS = ["timeout", "rate_limited", "server_error"]

# Share of each kind of line (sessions take their share from "session"). During a burst
# someone also tries stolen tokens: auth failures go from ~4 to ~40 a minute at 20 lines/s.
# LLM calls and their model mix keep the default rate's spend near $55 a day, under the
# rule pack's $100 budget (bench/ has its own workload with the reference mix).
KINDS = [("http_request", 0.805), ("llm_call", 0.06), ("session", 0.132), ("auth_failure", 0.003)]
BURST_KINDS = [
    ("http_request", 0.78),
    ("llm_call", 0.06),
    ("session", 0.13),
    ("auth_failure", 0.03),
]
TARGET_SESSIONS = 25

# A burst is sized to trip the bundled rule pack (5m rates, `for: 2m`) and then to let
# it resolve: with the defaults (60 s every 8 min) the 5xx ratio over 5m peaks near 7%
# (threshold 5%) and stays above it ~4.5 min, then falls back well before the next one.
BURST_5XX = 0.4
BURST_LLM_ERRORS = 0.6
CALM_5XX = 0.004
CALM_LLM_ERRORS = 0.005


@dataclass
class Options:
    rate: float = 20.0
    seed: int | None = None
    start: float | None = None
    burst_every: float = 480.0
    burst_length: float = 60.0
    first_burst: float | None = 60.0
    """Logical seconds until the first burst (None: one `burst_every`)."""


@dataclass
class Chatbot:
    """Generates the lines; pure apart from its own random generator."""

    opts: Options
    rng: random.Random = field(init=False)
    start: float = field(init=False)
    sessions: list[tuple[str, str]] = field(default_factory=list)
    """Open sessions: id and channel."""
    counter: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.opts.seed)
        self.start = self.opts.start if self.opts.start is not None else time.time()

    # -- time and bursts --------------------------------------------------------------

    def offset(self, i: int) -> float:
        """Logical seconds since start of line i."""
        return i / self.opts.rate if self.opts.rate > 0 else i * 0.05

    def in_burst(self, offset: float) -> bool:
        o = self.opts
        if o.burst_every <= 0 or o.burst_length <= 0:
            return False
        first = o.first_burst if o.first_burst is not None else o.burst_every
        if offset < first:
            return False
        return (offset - first) % o.burst_every < o.burst_length

    # -- lines ------------------------------------------------------------------------

    def lines(self) -> Iterator[tuple[float, list[Event]]]:
        """Forever: (logical time, the events written at it). One step -> 1 or 2 events."""
        i = 0
        while True:
            offset = self.offset(i)
            now = self.start + offset
            burst = self.in_burst(offset)
            stamp = iso(now)
            events = [{"ts": stamp, **e} for e in self.step(burst)]
            yield now, events
            i += len(events)

    def step(self, burst: bool) -> list[Event]:
        kind = self.pick(BURST_KINDS if burst else KINDS)
        if kind == "http_request":
            return [self.http_request(burst)]
        if kind == "llm_call":
            return [self.llm_call(burst)]
        if kind == "auth_failure":
            return [self.auth_failure(burst)]
        active = len(self.sessions)
        if self.rng.random() < TARGET_SESSIONS / (TARGET_SESSIONS + active):
            return [self.session_started()]
        return self.session_ended(burst)

    def next_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.rng.getrandbits(32):08x}{self.counter:06d}"

    def session_id(self) -> str | None:
        if not self.sessions:
            return None
        return self.rng.choice(self.sessions)[0]

    def http_request(self, burst: bool) -> Event:
        r = self.rng
        route, method, _, median, ok = self.pick_row(ROUTES, 2)
        slow = 3.0 if burst and route != "/healthz" else 1.0
        duration = round(self.lognormal(median * slow, 0.5), 1)
        status = ok
        roll = r.random()
        error_share = BURST_5XX if burst else CALM_5XX
        if route == "/healthz":
            error_share = 0.05 if burst else 0.0
        if roll < error_share:
            status = r.choice([500, 502, 503, 504] if burst else [500, 500, 502, 503])
        elif roll < error_share + 0.012:
            status = 400
        elif roll < error_share + 0.018:
            status = 404
        elif roll < error_share + (0.03 if burst else 0.022):
            status = 429
        event: Event = {
            "level": "error" if status >= 500 else "warning" if status >= 400 else "info",
            "logger": "chatbot.http",
            "event": "http_request",
            "message": f"{method} {route} {status}",
            "request_id": self.next_id("req"),
            "method": method,
            "route": route,
            "status_code": status,
            "duration_ms": duration,
        }
        if route in ("/api/chat", "/api/history", "/api/feedback"):
            sid = self.session_id()
            if sid:
                event["session_id"] = sid
        if status >= 500:
            event["error"] = r.choice(["UpstreamTimeout", "LLMProviderError", "DatabaseError"])
        return event

    def llm_call(self, burst: bool) -> Event:
        r = self.rng
        model, provider, _, p_in, p_out, median = self.pick_row(MODELS, 2)
        failed = r.random() < (BURST_LLM_ERRORS if burst else CALM_LLM_ERRORS)
        prompt = int(self.lognormal(500, 0.6))
        completion = 0 if failed else int(self.lognormal(150, 0.6))
        duration = round(self.lognormal(median * (2.5 if burst else 1.0), 0.5), 1)
        cost = 0.0 if failed else round(prompt / 1000 * p_in + completion / 1000 * p_out, 6)
        event: Event = {
            "level": "error" if failed else "info",
            "logger": "chatbot.llm",
            "event": "llm_call",
            "message": f"{model} {'failed' if failed else 'completed'}",
            "request_id": self.next_id("req"),
            "model": model,
            "provider": provider,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
            "cost_usd": cost,
            "duration_ms": duration,
            "status": "error" if failed else "ok",
        }
        sid = self.session_id()
        if sid:
            event["session_id"] = sid
        if failed:
            event["error_type"] = r.choice(LLM_ERRORS)
        return event

    def auth_failure(self, burst: bool) -> Event:
        r = self.rng
        reason = self.pick(AUTH_REASONS)
        return {
            "level": "warning",
            "logger": "chatbot.auth",
            "event": "auth_failure",
            "message": f"authentication failed: {reason}",
            "reason": reason,
            "route": r.choice(["/api/chat", "/api/sessions", "/api/history"]),
            "client_ip": f"203.0.113.{r.randrange(1, 255)}",
        }

    def session_started(self) -> Event:
        sid = self.next_id("sess")
        channel = self.rng.choice(CHANNELS)
        self.sessions.append((sid, channel))
        return {
            "level": "info",
            "logger": "chatbot.sessions",
            "event": "session_started",
            "message": "session started",
            "session_id": sid,
            "channel": channel,
        }

    def session_ended(self, burst: bool) -> list[Event]:
        r = self.rng
        sid, channel = self.sessions.pop(r.randrange(len(self.sessions)))
        turns = max(1, int(self.lognormal(4, 0.6)))
        weights = (
            [("resolved", 0.45), ("escalated", 0.3), ("abandoned", 0.25)]
            if burst
            else [("resolved", 0.75), ("escalated", 0.15), ("abandoned", 0.10)]
        )
        resolution = self.pick(weights)
        category = r.choice(CATEGORIES)
        outcome: Event = {
            "level": "info",
            "logger": "chatbot.conversations",
            "event": "conversation_ended",
            "message": f"Conversation {resolution} category={category}",
            "session_id": sid,
            "category": category,
            "resolution": resolution,
            "turns": turns,
        }
        ended: Event = {
            "level": "info",
            "logger": "chatbot.sessions",
            "event": "session_ended",
            "message": "session ended",
            "session_id": sid,
            "channel": channel,
            "duration_s": round(self.lognormal(180, 0.8), 1),
            "messages": turns * 2,
        }
        return [outcome, ended]

    # -- randomness -------------------------------------------------------------------

    def pick(self, weighted: list[tuple[str, float]]) -> str:
        return self.rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]

    def pick_row(self, rows: list[Any], weight_col: int) -> Any:
        return self.rng.choices(rows, [row[weight_col] for row in rows])[0]

    def lognormal(self, median: float, sigma: float) -> float:
        return self.rng.lognormvariate(math.log(median), sigma)


def iso(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Output:
    """The log file (or stdout), with logrotate-style rename + create rotation."""

    def __init__(self, path: str, rotate_every: int, keep: int) -> None:
        self.path = path
        self.rotate_every = rotate_every
        self.keep = keep
        self.written_since_rotation = 0
        self.stream: IO[str] = self._open()

    def _open(self) -> IO[str]:
        if self.path == "-":
            return sys.stdout
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "a", encoding="utf-8")

    def write(self, line: str) -> None:
        self.stream.write(line)
        self.written_since_rotation += 1
        if self.rotate_every and self.written_since_rotation >= self.rotate_every:
            self.rotate()

    def rotate(self) -> None:
        """Rename the file to `.1` (older copies shift up to `.keep`), then create a new one."""
        self.written_since_rotation = 0
        if self.path == "-":
            return
        self.stream.close()
        for n in range(self.keep - 1, 0, -1):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        self.stream = self._open()

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()
        if self.stream is not sys.stdout:
            self.stream.close()


def write(opts: Options, out: Output, lines: int | None, stop: list[bool]) -> int:
    """Write until `lines` are written or `stop[0]` turns true; returns lines written."""
    bot = Chatbot(opts)
    written = flushed = 0
    paced = opts.rate > 0
    for moment, events in bot.lines():
        if stop[0]:
            break
        if paced:
            out.flush()
            # Short naps, so a signal is acted on promptly even with --start in the future.
            while not stop[0] and (delay := moment - time.time()) > 0:
                time.sleep(min(delay, 0.25))
            if stop[0]:
                break
        for event in events:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
            written += 1
            if lines is not None and written >= lines:
                return written
        if written - flushed >= 1000:
            out.flush()
            flushed = written
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--out", default="demo/chatbot.log", help="log file, or - for stdout")
    p.add_argument(
        "--rate", type=float, default=20.0, help="lines per second; 0: as fast as possible"
    )
    p.add_argument("--lines", type=int, default=None, help="write this many lines, then exit")
    p.add_argument("--seed", type=int, default=None, help="same seed (and --start): same lines")
    p.add_argument(
        "--start", default=None, help="time of the first line: epoch seconds or ISO 8601"
    )
    p.add_argument(
        "--burst-every", type=float, default=480.0, help="seconds between error bursts; 0: none"
    )
    p.add_argument(
        "--burst-length", type=float, default=60.0, help="seconds each error burst lasts"
    )
    p.add_argument("--first-burst", type=float, default=60.0, help="seconds until the first burst")
    p.add_argument("--rotate-every", type=int, default=0, help="rename + create every N lines")
    p.add_argument("--keep", type=int, default=1, help="rotated copies kept (.1 ... .N)")
    return p.parse_args(argv)


def parse_start(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        rate=args.rate,
        seed=args.seed,
        start=parse_start(args.start),
        burst_every=args.burst_every,
        burst_length=args.burst_length,
        first_burst=args.first_burst,
    )
    stop = [False]

    def on_signal(signum: int, frame: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out = Output(args.out, args.rotate_every, max(1, args.keep))
    try:
        write(opts, out, args.lines, stop)
    except BrokenPipeError:  # `| head`: the reader left
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    finally:
        with contextlib.suppress(BrokenPipeError):
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
