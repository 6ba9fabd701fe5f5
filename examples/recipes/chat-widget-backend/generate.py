#!/usr/bin/env python3
"""A pretend chat-widget backend (Node.js, Express with pino-http), for the
chat-widget-backend recipe.

Standard library only:

    python examples/recipes/chat-widget-backend/generate.py --out sample.log
    python examples/recipes/chat-widget-backend/generate.py --lines 20000 --seed 7 --out big.log

Each line is what pino prints: `level` as a number (30 info, 40 warn, 50 error, 60
fatal), `time` in epoch milliseconds, `pid`, `hostname`, then the fields, then `msg`.
Requests are logged by pino-http when the response finishes:

    {"level":30,"time":1767261600123,"pid":2817,"hostname":"widget-api-1",
     "req":{"id":1,"method":"GET","url":"/api/widget/config?siteId=site_4f2a","query":{..},
            "params":{},"headers":{..},"remoteAddress":"::ffff:10.0.3.17","remotePort":53412},
     "res":{"statusCode":200,"headers":{..}},"responseTime":12,"msg":"request completed"}

`responseTime` is whole milliseconds. The app sets pino-http's `customLogLevel` (4xx warn,
5xx error); 5xx lines say "request errored" and carry `err`; `redact` hides the
Authorization header; /healthz is not logged (`autoLogging.ignore`). The process logs
`server listening` (with `port`) when it starts and `uncaught exception` (level 60)
before it dies; PM2 restarts it with a new pid.

The endpoints: GET /api/widget/config (the widget loads), POST /api/widget/sessions (a
visitor opens the chat), POST /api/widget/sessions/:id/messages (a question; the answer
comes from an LLM, so it takes about a second), GET the same path with `?after=` (the
widget polls). express-rate-limit allows 20 messages a minute per address (429 with
RateLimit headers).

The story (times after `--start`): healthy; from 10m to 20m the LLM provider is failing
(half the questions end in 502 or a 504 after 15 s, the others take 4 to 10 s); from 25m
to 28m a script posts a message every second from one address (429s); at 34m the
process crashes and restarts; healthy to the end. The log ends after `--lines` lines
(the default, 2100, reaches about 56 minutes). Same `--seed` and `--start`, same output.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import heapq
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LLM_OUTAGE = (10 * 60, 20 * 60)
RATE_LIMIT_BURST = (25 * 60, 28 * 60)
CRASH_AT = 34 * 60
RESTART_AFTER = 4.2  # seconds PM2 takes to bring the process back
SPELLS = {"llm_outage": LLM_OUTAGE, "rate_limit": RATE_LIMIT_BURST}

HOSTNAME = "widget-api-1"
PIDS = [2817, 3391]
PORT = 3000
RATE_LIMIT_PER_MINUTE = 20
SITES = [
    ("site_4f2a", "https://shop.example.com"),
    ("site_9c01", "https://www.acme-bikes.example"),
    ("site_b7e3", "https://help.tinyhotel.example"),
]
# endpoint kind: requests a second while healthy
RATES = {"config": 0.1, "session": 0.05, "message": 0.15, "poll": 0.25}
SCRIPT_ADDRESS = "::ffff:203.0.113.50"


def _during(t: float, spell: tuple[int, int]) -> bool:
    return spell[0] <= t < spell[1]


def encode(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


class Backend:
    """Simulated server: each request is logged when its response finishes."""

    def __init__(self, seed: int, start_ms: int) -> None:
        self.rng = random.Random(seed)
        self.start_ms = start_ms
        self.heap: list[tuple[int, int, dict[str, Any]]] = []
        self.seq = 0
        self.next_at = dict.fromkeys(RATES, 0.0)
        self.next_script = float(RATE_LIMIT_BURST[0])
        self.req_ids = [0] * len(PIDS)
        self.sessions: list[tuple[str, int]] = []  # (session id, site index)
        self.window: dict[tuple[str, int], int] = {}  # (address, minute): messages
        self._started = False

    # -- the process ------------------------------------------------------------------------

    def _proc(self, t: float) -> int | None:
        """Index of the process serving at `t`, None while it is down."""
        if t < CRASH_AT:
            return 0
        if t < CRASH_AT + RESTART_AFTER:
            return None
        return 1

    def _push(self, t: float, record: dict[str, Any]) -> None:
        ms = self.start_ms + int(t * 1000)
        heapq.heappush(self.heap, (ms, self.seq, record))
        self.seq += 1

    def _base(self, proc: int, level: int) -> dict[str, Any]:
        return {"level": level, "time": None, "pid": PIDS[proc], "hostname": HOSTNAME}

    def _lifecycle(self) -> None:
        for proc, t in ((0, 0.0), (1, CRASH_AT + RESTART_AFTER - 0.35)):
            self._push(t, {**self._base(proc, 30), "port": PORT, "msg": "server listening"})
        stack = (
            "TypeError: Cannot read properties of undefined (reading 'choices')\n"
            "    at answerQuestion (/srv/widget/src/llm.js:88:31)\n"
            "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)"
        )
        err = {
            "type": "TypeError",
            "message": "Cannot read properties of undefined (reading 'choices')",
            "stack": stack,
        }
        self._push(CRASH_AT, {**self._base(0, 60), "err": err, "msg": "uncaught exception"})

    # -- requests ---------------------------------------------------------------------------

    def _address(self) -> str:
        r = self.rng
        return f"::ffff:10.0.{r.randint(0, 7)}.{r.randint(2, 254)}"

    def _request(
        self,
        t: float,
        method: str,
        url: str,
        query: dict[str, str],
        site: int,
        *,
        status: int,
        took_ms: int,
        body_bytes: int,
        address: str | None = None,
        auth: bool = True,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        proc = self._proc(t)
        if proc is None or self._proc(t + took_ms / 1000) != proc:
            return  # refused while down, or lost in the crash: nothing is logged
        r = self.rng
        self.req_ids[proc] += 1
        headers = {"host": "widget-api.example.com", "origin": SITES[site][1]}
        if method == "POST":
            headers["content-type"] = "application/json"
        if auth:
            headers["authorization"] = "[Redacted]"
        req = {
            "id": self.req_ids[proc],
            "method": method,
            "url": url,
            "query": query,
            "params": {},
            "headers": headers,
            "remoteAddress": address or self._address(),
            "remotePort": r.randint(32768, 60999),
        }
        res_headers = {
            **(extra_headers or {}),
            "content-type": "application/json; charset=utf-8",
            "content-length": str(body_bytes),
        }
        res = {"statusCode": status, "headers": res_headers}
        level = 50 if status >= 500 else 40 if status >= 400 else 30
        record = {**self._base(proc, level), "req": req, "res": res}
        if status >= 500:
            message = f"failed with status code {status}"
            record["err"] = {
                "type": "Error",
                "message": message,
                "stack": f"Error: {message}\n"
                "    at ServerResponse.onResFinished "
                "(/srv/widget/node_modules/pino-http/logger.js:115:39)",
            }
        record["responseTime"] = took_ms
        record["msg"] = "request errored" if status >= 500 else "request completed"
        self._push(t + took_ms / 1000, record)

    def _rate_limited(self, t: float, address: str) -> dict[str, str] | None:
        """express-rate-limit's fixed window: the 429 headers, or None if allowed."""
        minute = int(t // 60)
        used = self.window.get((address, minute), 0) + 1
        self.window[(address, minute)] = used
        if used <= RATE_LIMIT_PER_MINUTE:
            return None
        reset = str(60 * (minute + 1) - int(t))
        return {
            "ratelimit-limit": str(RATE_LIMIT_PER_MINUTE),
            "ratelimit-remaining": "0",
            "ratelimit-reset": reset,
            "retry-after": reset,
        }

    def _message(self, t: float, address: str | None = None) -> None:
        r = self.rng
        if not self.sessions:
            return
        sid, site = r.choice(self.sessions[-40:])
        url = f"/api/widget/sessions/{sid}/messages"
        address = address or self._address()
        limited = self._rate_limited(t, address)
        if limited is not None or (address != SCRIPT_ADDRESS and r.random() < 0.01):
            limited = limited or {
                "ratelimit-limit": str(RATE_LIMIT_PER_MINUTE),
                "ratelimit-remaining": "0",
                "ratelimit-reset": str(r.randint(1, 59)),
            }
            limited.setdefault("retry-after", limited["ratelimit-reset"])
            self._request(
                t,
                "POST",
                url,
                {},
                site,
                status=429,
                took_ms=r.randint(0, 2),
                body_bytes=62,
                address=address,
                extra_headers=limited,
            )
            return
        if _during(t, LLM_OUTAGE):
            roll = r.random()
            if roll < 0.25:
                status, took = 504, 15000 + r.randint(1, 9)  # the upstream timeout
            elif roll < 0.5:
                status, took = 502, r.randint(200, 900)
            else:
                status, took = 200, r.randint(4000, 10000)
        else:
            status = 502 if r.random() < 0.002 else 200
            took = r.randint(450, 1600)
        size = r.randint(300, 1800) if status == 200 else 74
        self._request(t, "POST", url, {}, site, status=status, took_ms=took, body_bytes=size)

    def _arrival(self, kind: str, t: float) -> None:
        r = self.rng
        site = r.randrange(len(SITES))
        if kind == "config":
            sid = SITES[site][0]
            self._request(
                t,
                "GET",
                f"/api/widget/config?siteId={sid}",
                {"siteId": sid},
                site,
                status=200,
                took_ms=r.randint(3, 25),
                body_bytes=r.randint(700, 900),
                auth=False,
            )
        elif kind == "session":
            sid = f"ses_{r.getrandbits(48):012x}"
            self.sessions.append((sid, site))
            self._request(
                t,
                "POST",
                "/api/widget/sessions",
                {},
                site,
                status=201,
                took_ms=r.randint(15, 70),
                body_bytes=r.randint(120, 160),
                auth=False,
            )
        elif kind == "message":
            self._message(t)
        elif self.sessions:
            sid, site = r.choice(self.sessions[-40:])
            after = f"msg_{r.getrandbits(32):08x}"
            self._request(
                t,
                "GET",
                f"/api/widget/sessions/{sid}/messages?after={after}",
                {"after": after},
                site,
                status=200,
                took_ms=r.randint(2, 30),
                body_bytes=r.randint(2, 900),
            )

    def _advance(self, until: float) -> None:
        """Handle every arrival before `until`, in time order (req.id counts arrivals)."""
        r = self.rng
        if not self._started:
            self._lifecycle()
            self._started = True
        while True:
            kind = min(self.next_at, key=self.next_at.__getitem__)
            t = self.next_at[kind]
            script = self.next_script < RATE_LIMIT_BURST[1] and self.next_script < t
            if script:
                t = self.next_script
            if t >= until:
                return
            if script:
                self._message(t, address=SCRIPT_ADDRESS)
                self.next_script += r.uniform(0.8, 1.2)
            else:
                self._arrival(kind, t)
                self.next_at[kind] += r.expovariate(RATES[kind])

    def lines(self) -> Iterator[str]:
        horizon = 0.0
        while True:
            horizon += 60.0
            self._advance(horizon)
            cutoff = self.start_ms + int((horizon - 30.0) * 1000)  # longer than any request
            while self.heap and self.heap[0][0] <= cutoff:
                ms, _, record = heapq.heappop(self.heap)
                record["time"] = ms
                yield encode(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="-", help="file to write (- is stdout)")
    parser.add_argument("--lines", type=int, default=2100, help="lines to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start", default="2026-01-01T10:00:00+00:00", help="time of the first line (ISO 8601)"
    )
    args = parser.parse_args(argv)
    start = dt.datetime.fromisoformat(args.start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    start_ms = int(start.replace(microsecond=0).timestamp()) * 1000 + start.microsecond // 1000
    backend = Backend(args.seed, start_ms)
    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if args.out != "-":
            out = stack.enter_context(Path(args.out).open("w", encoding="utf-8"))
        for i, line in enumerate(backend.lines()):
            if i >= args.lines:
                break
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
