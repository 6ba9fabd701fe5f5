#!/usr/bin/env python3
"""A pretend Go live-chat server with an AI consultant, logging through log/slog's
JSONHandler, for the go-live-chat recipe.

Standard library only:

    python examples/recipes/go-live-chat/generate.py --out sample.log
    python examples/recipes/go-live-chat/generate.py --lines 20000 --seed 7 --out big.log

Each line is what `slog.New(slog.NewJSONHandler(w, nil))` prints: `time` (RFC 3339 with
nanoseconds, trailing zeros trimmed, as Go's time.RFC3339Nano), `level` (DEBUG, INFO,
WARN, ERROR), `msg`, then the attributes. A context handler adds `correlation_id` (per
websocket connection for connection events, per user message for a chat turn).
`slog.Duration` attributes are integer nanoseconds, `slog.Group("usage", ...)` is a
nested object, and float64 values are printed as Go's encoding/json prints them.

The messages and their attributes:

    websocket connection opened   conn_id, user_id, remote_addr
    websocket connection closed   conn_id, code (1000, 1001, 1006), duration, messages
    websocket connection failed   remote_addr, error                       (ERROR)
    message received              conn_id, user_id, type=user_message, bytes
    cache hit / cache miss        cache=answers, key
    ai request completed          model, usage{prompt_tokens,completion_tokens,total_tokens},
                                  cost_usd, duration
    ai request failed             model, status_code, error, duration      (ERROR)
    message sent                  conn_id, type (ai_answer | error), bytes, response_time
    auth failed                   reason, path, remote_addr                (WARN)

Each user message is looked up in the answer cache; a miss asks the AI model, and the
reply (or an error frame when the AI request failed) goes back on the websocket.

The story (times after `--start`): healthy until 15m; from 15m to 30m the answer cache
misses (a deploy changed its key prefix), so every question goes to the model, which
slows down and rate-limits (errors, slow replies, spend); from 35m to 38m someone tries
stolen tokens (auth failures); from 42m to 48m a proxy strips the Upgrade header from
40% of websocket handshakes; then healthy again. The log ends after `--lines` lines
(the default, 4400, reaches about 58 minutes, after everything recovered). With the same
`--seed` and `--start` the output is identical.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

NS = 1_000_000_000

# Spells, in seconds after the start: (begin, end).
CACHE_OUTAGE = (15 * 60, 30 * 60)
AUTH_BURST = (35 * 60, 38 * 60)
UPGRADE_FAILURES = (42 * 60, 48 * 60)
SPELLS = {"cache_outage": CACHE_OUTAGE, "auth_burst": AUTH_BURST, "upgrade": UPGRADE_FAILURES}

MESSAGE_RATE = 0.3  # user messages a second
CONNECT_RATE = 0.1  # websocket handshakes a second
MODEL = "gpt-4o"
PROMPT_USD_PER_TOKEN = 2.5e-6
COMPLETION_USD_PER_TOKEN = 10e-6
NO_UPGRADE = (
    "websocket: the client is not using the websocket protocol: "
    "'upgrade' token not found in 'Connection' header"
)
AI_ERRORS = [
    (
        429,
        "error, status code: 429, status: 429 Too Many Requests, message: Rate limit "
        "reached for gpt-4o in organization org-livechat on tokens per min (TPM): "
        "Limit 30000, Used 29714, Requested 2211. Please try again in 3.85s.",
    ),
    (504, "context deadline exceeded"),
]
AUTH_REASONS = ["token expired", "invalid signature", "missing token"]


def _during(t: float, spell: tuple[int, int]) -> bool:
    return spell[0] <= t < spell[1]


def go_time(ns: int) -> str:
    """time.Time formatted as time.RFC3339Nano in UTC (trailing zeros trimmed)."""
    secs, frac = divmod(ns, NS)
    text = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def go_float(x: float) -> str:
    """A float64 as encoding/json prints it: the shortest digits that read back the same,
    without an exponent from 1e-6 up to 1e21, and `e-7` rather than Python's `e-07`."""
    if x != 0 and not 1e-6 <= abs(x) < 1e21:
        mantissa, exp = repr(x).split("e")
        return f"{mantissa}e{int(exp):+d}"
    text = format(Decimal(repr(x)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class GoFloat(float):
    """A float that is serialised the way Go prints it."""


def encode(record: dict[str, Any]) -> str:
    """One slog JSON line (keys in insertion order, compact, floats as Go prints them)."""
    parts = []
    for key, value in record.items():
        if isinstance(value, GoFloat):
            parts.append(f"{json.dumps(key)}:{go_float(float(value))}")
        elif isinstance(value, dict):
            parts.append(f"{json.dumps(key)}:{encode(value)}")
        else:
            parts.append(f"{json.dumps(key)}:{json.dumps(value, separators=(',', ':'))}")
    return "{" + ",".join(parts) + "}"


@dataclass
class Conn:
    conn_id: str
    user_id: str
    correlation_id: str
    opened_ns: int
    closes_ns: int
    messages: int = 0


class LiveChat:
    """Simulated server: events are pushed on a heap with their time, written in order."""

    def __init__(self, seed: int, start_ns: int) -> None:
        self.rng = random.Random(seed)
        self.start_ns = start_ns
        self.heap: list[tuple[int, int, dict[str, Any], Conn | None]] = []
        self.seq = 0
        self.conns: list[Conn] = []
        self.next_message = 0.0
        self.next_connect = 0.0
        self.next_auth_failure = 0.0

    # -- ids ------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _addr(self) -> str:
        r = self.rng
        host = f"10.{r.randint(0, 3)}.{r.randint(0, 255)}.{r.randint(2, 254)}"
        return f"{host}:{r.randint(32768, 60999)}"

    # -- emitting ---------------------------------------------------------------------------

    def _emit(
        self, t: float, level: str, msg: str, attrs: dict[str, Any], conn: Conn | None = None
    ) -> None:
        ns = self.start_ns + round(t * NS)
        record: dict[str, Any] = {"time": None, "level": level, "msg": msg, **attrs}
        heapq.heappush(self.heap, (ns, self.seq, record, conn))
        self.seq += 1

    # -- traffic ----------------------------------------------------------------------------

    def _connect(self, t: float) -> None:
        r = self.rng
        failing = 0.4 if _during(t, UPGRADE_FAILURES) else 0.002
        cid = self._uuid()
        if r.random() < failing:
            attrs = {"correlation_id": cid, "remote_addr": self._addr(), "error": NO_UPGRADE}
            self._emit(t, "ERROR", "websocket connection failed", attrs)
            return
        conn = Conn(
            conn_id=f"c-{r.getrandbits(32):08x}",
            user_id=f"u-{r.randint(10000, 99999)}",
            correlation_id=cid,
            opened_ns=round(t * NS),
            closes_ns=round((t + r.uniform(60, 900)) * NS),
        )
        self.conns.append(conn)
        self._emit(
            t,
            "INFO",
            "websocket connection opened",
            {
                "correlation_id": cid,
                "conn_id": conn.conn_id,
                "user_id": conn.user_id,
                "remote_addr": self._addr(),
            },
        )
        # The close is filled in when it is written (its message count is known then).
        self._emit(conn.closes_ns / NS, "INFO", "websocket connection closed", {}, conn)

    def _message(self, t: float) -> None:
        r = self.rng
        now_ns = round(t * NS)
        open_conns = [c for c in self.conns if c.opened_ns <= now_ns < c.closes_ns - 20 * NS]
        if not open_conns:
            return
        conn = r.choice(open_conns)
        conn.messages += 1
        cid = self._uuid()
        outage = _during(t, CACHE_OUTAGE)
        self._emit(
            t,
            "INFO",
            "message received",
            {
                "correlation_id": cid,
                "conn_id": conn.conn_id,
                "user_id": conn.user_id,
                "type": "user_message",
                "bytes": r.randint(12, 600),
            },
        )
        t_cache = t + r.uniform(0.0008, 0.004)
        key = f"ans:v{'3' if outage else '2'}:{r.getrandbits(40):010x}"
        hit = r.random() < (0.15 if outage else 0.85)
        self._emit(
            t_cache,
            "INFO",
            "cache hit" if hit else "cache miss",
            {"correlation_id": cid, "cache": "answers", "key": key},
        )
        if hit:
            done = t_cache + r.uniform(0.005, 0.06)
            self._sent(done, cid, conn, "ai_answer", r.randint(200, 2400), t)
            return
        if outage:
            took = min(r.lognormvariate(1.0, 0.45), 9.0) + 0.8
            fails = r.random() < 0.18
        else:
            took = min(0.35 + r.lognormvariate(-0.3, 0.35), 1.85)
            fails = r.random() < 0.01
        done = t_cache + took
        if fails:
            status, error = r.choice(AI_ERRORS)
            if status == 504:
                done = t_cache + 10.0  # the client's deadline
            self._emit(
                done,
                "ERROR",
                "ai request failed",
                {
                    "correlation_id": cid,
                    "model": MODEL,
                    "status_code": status,
                    "error": error,
                    "duration": round((done - t_cache) * NS),
                },
            )
            self._sent(done + r.uniform(0.0005, 0.003), cid, conn, "error", 96, t)
            return
        prompt = r.randint(1500, 2600)
        completion = r.randint(250, 650)
        cost = prompt * PROMPT_USD_PER_TOKEN + completion * COMPLETION_USD_PER_TOKEN
        self._emit(
            done,
            "INFO",
            "ai request completed",
            {
                "correlation_id": cid,
                "model": MODEL,
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
                "cost_usd": GoFloat(cost),
                "duration": round((done - t_cache) * NS),
            },
        )
        self._sent(done + r.uniform(0.0005, 0.003), cid, conn, "ai_answer", completion * 4, t)

    def _sent(self, t: float, cid: str, conn: Conn, kind: str, size: int, since: float) -> None:
        attrs = {
            "correlation_id": cid,
            "conn_id": conn.conn_id,
            "type": kind,
            "bytes": size,
            "response_time": round((t - since) * NS),
        }
        self._emit(t, "INFO", "message sent", attrs)

    def _auth_failure(self, t: float) -> None:
        r = self.rng
        reason = "invalid signature" if _during(t, AUTH_BURST) else r.choice(AUTH_REASONS)
        attrs = {
            "correlation_id": self._uuid(),
            "reason": reason,
            "path": "/ws",
            "remote_addr": self._addr(),
        }
        self._emit(t, "WARN", "auth failed", attrs)

    def _advance(self, until: float) -> None:
        """Schedule every arrival up to `until` seconds."""
        r = self.rng
        while self.next_connect < until:
            self._connect(self.next_connect)
            # After a deploy, clients reconnect in the first half minute.
            rate = 0.5 if self.next_connect < 30 else CONNECT_RATE
            self.next_connect += r.expovariate(rate)
        while self.next_message < until:
            self._message(self.next_message)
            self.next_message += r.expovariate(MESSAGE_RATE)
        while self.next_auth_failure < until:
            if self.next_auth_failure > 0:
                self._auth_failure(self.next_auth_failure)
            t = self.next_auth_failure
            t += r.expovariate(0.5 if _during(t, AUTH_BURST) else 1 / 150)
            if self.next_auth_failure < AUTH_BURST[0] < t:
                t = AUTH_BURST[0]  # the burst starts on time, not at the next quiet arrival
            self.next_auth_failure = t

    def lines(self) -> Iterator[str]:
        horizon = 0.0
        while True:
            horizon += 60.0
            self._advance(horizon)
            # Anything scheduled before the horizon minus the longest turn is final.
            cutoff = self.start_ns + round((horizon - 30.0) * NS)
            while self.heap and self.heap[0][0] <= cutoff:
                ns, _, record, conn = heapq.heappop(self.heap)
                if conn is not None:  # a close: its count of messages is known now
                    record.update(
                        correlation_id=conn.correlation_id,
                        conn_id=conn.conn_id,
                        code=self.rng.choices([1000, 1001, 1006], [70, 25, 5])[0],
                        duration=conn.closes_ns - conn.opened_ns,
                        messages=conn.messages,
                    )
                    self.conns.remove(conn)
                record["time"] = go_time(ns)
                yield encode(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="-", help="file to write (- is stdout)")
    parser.add_argument("--lines", type=int, default=4400, help="lines to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start", default="2026-01-01T10:00:00+00:00", help="time of the first line (ISO 8601)"
    )
    args = parser.parse_args(argv)
    start = dt.datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    start_ns = int(start.replace(microsecond=0).timestamp()) * NS + start.microsecond * 1000
    chat = LiveChat(args.seed, start_ns)
    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if args.out != "-":
            out = stack.enter_context(Path(args.out).open("w", encoding="utf-8"))
        for i, line in enumerate(chat.lines()):
            if i >= args.lines:
                break
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
