"""Sample log of a FastAPI customer-support bot that logs with Python's `logging` in text.

The bot configures the root logger with

    %(asctime)s [%(levelname)s] [req:%(request_id)s] [session:%(session_id)s] %(name)s - %(message)s

(a `logging.Filter` fills `request_id` and `session_id` from contextvars, `-` outside a
request), and this script formats its records with that very `logging.Formatter`, so the
lines are what the real logger prints: `asctime` is `2026-01-01 10:00:00,123`, and
`logger.exception(...)` appends the traceback as extra lines that carry no timestamp.

What the bot logs (logger - message):

    uvicorn.error        Started server process [1] ... (startup banner)
    uvicorn.access       10.12.0.7:53122 - "POST /api/chat HTTP/1.1" 200  (and GET /healthz)
    support_bot.api      Session started channel=web
    support_bot.router   Handler matched: PasswordResetHandler
    support_bot.llm      LLM call completed model=gpt-4o-mini duration_ms=843 ...
    support_bot.llm      LLM call failed error_type=timeout model=gpt-4o-mini attempt=1
    support_bot.crm      Order lookup failed error_type=crm_unavailable upstream=crm-api
    support_bot.conversation  Conversation resolved category=login turns=3
    support_bot.conversation  Conversation abandoned category=orders idle_seconds=300
    support_bot.handoff  Escalated to agent category=billing reason=user_request

The two ERROR lines are logged with `logger.exception()`, so a traceback follows each.

A healthy bot has a stray error now and then (never 3 of one type within 6 minutes). From
BAD_START for BAD_LENGTH the LLM provider times out on most calls: the bot retries once,
then hands the conversation to a human (`reason=llm_unavailable`), so timeouts pile up
and the automation rate drops. The log then goes on healthy long enough for the alerts to
resolve.

`--counts FILE` writes what was written as JSON (per handler, per conversation category
and resolution, per error type, per exception type ...), so a test can check chatwatch's
numbers against the generator's own knowledge instead of chatwatch's output. Standard
library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = (
    "%(asctime)s [%(levelname)s] [req:%(request_id)s] [session:%(session_id)s] "
    "%(name)s - %(message)s"
)
BAD_START = 25 * 60  # seconds after --start
BAD_LENGTH = 10 * 60
HEALTH_PROBE_EVERY = 10.0
MEAN_ARRIVAL = 15.0  # seconds between new conversations, on average
MODEL = "gpt-4o-mini"

HANDLERS = {
    "login": ["PasswordResetHandler", "AccountUnlockHandler"],
    "billing": ["InvoiceHandler", "RefundHandler"],
    "orders": ["OrderStatusHandler", "ReturnHandler"],
    "account": ["ProfileUpdateHandler"],
    "general": ["FallbackLLMHandler"],
}
CATEGORY_WEIGHTS = {"login": 30, "billing": 20, "orders": 30, "account": 10, "general": 10}
CHANNELS = ["web", "web", "web", "slack", "whatsapp"]

TIMEOUT_TRACEBACK = """\
Traceback (most recent call last):
  File "/usr/local/lib/python3.11/site-packages/httpx/_transports/default.py", line 69, \
in map_httpcore_exceptions
    yield
  File "/usr/local/lib/python3.11/site-packages/httpx/_transports/default.py", line 373, \
in handle_async_request
    resp = await self._pool.handle_async_request(req)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
httpx.ReadTimeout: timed out

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/support_bot/llm.py", line 61, in complete
    response = await self._client.chat.completions.create(
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.11/site-packages/openai/_base_client.py", line 1612, in _request
    raise APITimeoutError(request=request) from err
openai.APITimeoutError: Request timed out."""

RATE_LIMIT_TRACEBACK = """\
Traceback (most recent call last):
  File "/app/support_bot/llm.py", line 61, in complete
    response = await self._client.chat.completions.create(
               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.11/site-packages/openai/_base_client.py", line 1633, in _request
    raise self._make_status_error_from_response(err.response) from None
openai.RateLimitError: Error code: 429 - {'error': {'message': 'Rate limit reached for \
gpt-4o-mini on requests per min (RPM): Limit 500, Used 500, Requested 1.', 'type': \
'requests', 'param': None, 'code': 'rate_limit_exceeded'}}"""

CRM_TRACEBACK = """\
Traceback (most recent call last):
  File "/app/support_bot/crm.py", line 34, in get_order
    resp = await self._http.get(f"/orders/{order_id}")
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/usr/local/lib/python3.11/site-packages/httpx/_client.py", line 1757, in get
    return await self.request(
           ^^^^^^^^^^^^^^^^^^^
httpx.ConnectError: [Errno 111] Connection refused"""

TRACEBACKS = {
    "timeout": TIMEOUT_TRACEBACK,
    "rate_limited": RATE_LIMIT_TRACEBACK,
    "crm_unavailable": CRM_TRACEBACK,
}
EXCEPTION_TYPES = {
    # The exception each traceback above ends with: the one the bot's code caught.
    "timeout": "openai.APITimeoutError",
    "rate_limited": "openai.RateLimitError",
    "crm_unavailable": "httpx.ConnectError",
}


@dataclass(order=True)
class Record:
    """One call to a logger: formatted into one line, plus its traceback lines if any."""

    ms: int  # milliseconds after --start
    seq: int  # emission order, to keep records of one millisecond in order
    level: int = field(compare=False)
    logger: str = field(compare=False)
    message: str = field(compare=False)
    request_id: str = field(compare=False, default="-")
    session_id: str = field(compare=False, default="-")
    traceback: str | None = field(compare=False, default=None)
    counts: list[tuple[str, tuple[str, ...]]] = field(compare=False, default_factory=list)
    """What this record adds to the expected metrics: (metric, label values)."""


class Bot:
    """Simulates the bot: conversations arrive, take turns, end; health probes tick."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.records: list[Record] = []
        self.seq = 0
        self.error_times: dict[str, list[int]] = {t: [] for t in TRACEBACKS}

    # -- records --------------------------------------------------------------------------

    def log(self, ms: int, level: int, logger: str, message: str, **kw: Any) -> Record:
        self.seq += 1
        rec = Record(ms, self.seq, level, logger, message, **kw)
        rec.counts.append(("lines", (logging.getLevelName(level),)))
        self.records.append(rec)
        return rec

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(48):012x}"

    def client(self) -> str:
        rng = self.rng
        return f"10.12.{rng.randint(0, 3)}.{rng.randint(2, 250)}:{rng.randint(32768, 60999)}"

    def access(self, ms: int, req: str, session: str, method: str, path: str, status: int) -> None:
        msg = f'{self.client()} - "{method} {path} HTTP/1.1" {status}'
        rec = self.log(ms, logging.INFO, "uvicorn.access", msg, request_id=req, session_id=session)
        rec.counts.append(("http", (method, path, str(status))))

    def error(
        self, ms: int, logger: str, message: str, error_type: str, req: str, session: str
    ) -> Record:
        rec = self.log(
            ms,
            logging.ERROR,
            logger,
            message,
            request_id=req,
            session_id=session,
            traceback=TRACEBACKS[error_type],
        )
        rec.counts.append(("errors", (logger, error_type)))
        rec.counts.append(("exceptions", (logger, EXCEPTION_TYPES[error_type])))
        self.error_times[error_type].append(ms)
        return rec

    def stray_error_allowed(self, error_type: str, ms: int) -> bool:
        """At most 2 errors of a type within 6 minutes outside the bad spell."""
        near = [t for t in self.error_times[error_type] if abs(t - ms) < 6 * 60_000]
        return len(near) < 2

    # -- behaviour ------------------------------------------------------------------------

    def startup(self) -> None:
        for i, msg in enumerate(
            [
                "Started server process [1]",
                "Waiting for application startup.",
                "Application startup complete.",
                "Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
            ]
        ):
            self.log(i * 3, logging.INFO, "uvicorn.error", msg)

    def probe(self, ms: int) -> None:
        self.access(ms, self.new_id(), "-", "GET", "/healthz", 200)

    def llm_call(self, ms: int, req: str, session: str) -> tuple[int, bool]:
        """One answer from the LLM, retried once; (time after it, answered)."""
        bad = BAD_START * 1000 <= ms < (BAD_START + BAD_LENGTH) * 1000
        for attempt in (1, 2):
            roll = self.rng.random()
            if bad:
                error_type = "timeout" if roll < 0.75 else None
            elif roll < 0.004:
                error_type = "timeout"
            elif roll < 0.008:
                error_type = "rate_limited"
            else:
                error_type = None
            if error_type is not None and (bad or self.stray_error_allowed(error_type, ms)):
                ms += 30_000 if error_type == "timeout" else 150  # the client's timeout
                msg = f"LLM call failed error_type={error_type} model={MODEL} attempt={attempt}"
                rec = self.error(ms, "support_bot.llm", msg, error_type, req, session)
                rec.counts.append(("llm", (MODEL, "failed")))
                ms += 500
                continue
            duration = int(self.rng.lognormvariate(6.7, 0.35))
            ms += duration
            prompt = self.rng.randint(350, 1400)
            completion = self.rng.randint(40, 260)
            msg = (
                f"LLM call completed model={MODEL} duration_ms={duration} "
                f"prompt_tokens={prompt} completion_tokens={completion}"
            )
            rec = self.log(
                ms, logging.INFO, "support_bot.llm", msg, request_id=req, session_id=session
            )
            rec.counts.append(("llm", (MODEL, "completed")))
            return ms, True
        return ms, False

    def conversation(self, start_ms: int) -> Iterator[int]:
        """Yields the time of each step; the caller resumes it in time order."""
        rng = self.rng
        session = f"s-{rng.getrandbits(32):08x}"
        category = rng.choices(list(CATEGORY_WEIGHTS), list(CATEGORY_WEIGHTS.values()))[0]
        turns = rng.choice([1, 2, 2, 3, 3, 4])
        req = self.new_id()
        ms = start_ms
        self.log(
            ms,
            logging.INFO,
            "support_bot.api",
            f"Session started channel={rng.choice(CHANNELS)}",
            request_id=req,
            session_id=session,
        )
        for turn in range(1, turns + 1):
            if turn > 1:
                ms += int(rng.uniform(8, 45) * 1000)  # the user reads and types
                yield ms
                req = self.new_id()
            ms += rng.randint(20, 120)
            handler = rng.choice(HANDLERS[category])
            rec = self.log(
                ms,
                logging.INFO,
                "support_bot.router",
                f"Handler matched: {handler}",
                request_id=req,
                session_id=session,
            )
            rec.counts.append(("handlers", (handler,)))
            crm_down = category == "orders" and rng.random() < 0.02
            if crm_down and self.stray_error_allowed("crm_unavailable", ms):
                ms += 5
                msg = "Order lookup failed error_type=crm_unavailable upstream=crm-api"
                self.error(ms, "support_bot.crm", msg, "crm_unavailable", req, session)
            ms, answered = self.llm_call(ms, req, session)
            ms += rng.randint(3, 30)
            self.access(ms, req, session, "POST", "/api/chat", 200)
            if not answered:
                ms += 2
                self.end(ms, session, category, "escalated", req, "reason=llm_unavailable")
                return
        outcome = rng.choices(["resolved", "escalated", "abandoned"], [74, 16, 10])[0]
        if outcome == "resolved":
            ms += int(rng.uniform(5, 40) * 1000)  # "Did this solve it?" -> yes
            yield ms
            self.end(ms, session, category, outcome, self.new_id(), f"turns={turns}")
        elif outcome == "escalated":
            ms += int(rng.uniform(5, 30) * 1000)  # "Talk to a person"
            yield ms
            self.end(ms, session, category, outcome, self.new_id(), "reason=user_request")
        else:
            ms += 300_000  # the idle timeout, from a background task
            yield ms
            self.end(ms, session, category, outcome, "-", "idle_seconds=300")

    def end(self, ms: int, session: str, category: str, outcome: str, req: str, extra: str) -> None:
        if outcome == "escalated":
            logger, msg = "support_bot.handoff", f"Escalated to agent category={category} {extra}"
        else:
            logger = "support_bot.conversation"
            msg = f"Conversation {outcome} category={category} {extra}"
        rec = self.log(ms, logging.INFO, logger, msg, request_id=req, session_id=session)
        rec.counts.append(("conversations", (category, outcome)))
        if outcome == "escalated":
            rec.counts.append(("escalations", (extra.removeprefix("reason="),)))

    def run(self, lines: int) -> list[Record]:
        """Simulate until the records, in time order, reach `lines` lines; return those."""
        self.startup()
        queue: list[tuple[int, int, Iterator[int] | None]] = []
        n = 0
        heapq.heappush(queue, (1000, n, None))  # the first health probe
        arrival = 2000
        probe_every = int(HEALTH_PROBE_EVERY * 1000)
        while True:
            if arrival <= queue[0][0]:
                n += 1
                conv = self.conversation(arrival)
                step = next(conv, None)
                if step is not None:
                    heapq.heappush(queue, (step, n, conv))
                # Whatever is not simulated yet happens after this arrival.
                done = self._complete(lines, arrival)
                if done is not None:
                    return done
                arrival += int(self.rng.expovariate(1 / MEAN_ARRIVAL) * 1000) + 1
                continue
            ms, key, resumed = heapq.heappop(queue)
            if resumed is None:
                self.probe(ms)
                heapq.heappush(queue, (ms + probe_every, key, None))
                continue
            step = next(resumed, None)
            if step is not None:
                heapq.heappush(queue, (step, key, resumed))

    def _complete(self, lines: int, horizon: int) -> list[Record] | None:
        """The first records (in time order) reaching `lines` lines, or None while records
        before the line count is reached may still come: every step not simulated yet
        happens after `horizon` and logs nothing earlier than its own time."""
        ordered = sorted(self.records)
        total = 0
        for i, rec in enumerate(ordered):
            if rec.ms >= horizon:
                return None
            total += 1 + (rec.traceback.count("\n") + 1 if rec.traceback else 0)
            if total >= lines:
                return ordered[: i + 1]
        return None


def format_lines(records: list[Record], start: dt.datetime) -> list[str]:
    """The records as the bot's logging.Formatter prints them (times in UTC)."""
    formatter = logging.Formatter(FORMAT)
    formatter.converter = time.gmtime
    epoch_ms = round(start.timestamp() * 1000)
    out = []
    for rec in records:
        at = epoch_ms + rec.ms
        record = logging.makeLogRecord(
            {
                "name": rec.logger,
                "levelno": rec.level,
                "levelname": logging.getLevelName(rec.level),
                "msg": rec.message,
                "created": at / 1000,
                "msecs": float(at % 1000),
                "request_id": rec.request_id,
                "session_id": rec.session_id,
                "exc_text": rec.traceback,
            }
        )
        out.append(formatter.format(record))
    return out


def counts(records: list[Record], start: dt.datetime) -> dict[str, Any]:
    """What the log holds, from the generator's side: metric -> [[labels..., count]]."""
    tally: dict[str, Counter[tuple[str, ...]]] = {}
    continuation = 0
    errors: dict[str, list[str]] = {}
    for rec in records:
        for metric, labels in rec.counts:
            tally.setdefault(metric, Counter())[labels] += 1
        if rec.traceback:
            continuation += rec.traceback.count("\n") + 1
            error_type = next(lb[1] for m, lb in rec.counts if m == "errors")
            at = start + dt.timedelta(milliseconds=rec.ms)
            errors.setdefault(error_type, []).append(at.isoformat())
    return {
        "start": start.isoformat(),
        "bad_spell": [
            (start + dt.timedelta(seconds=BAD_START)).isoformat(),
            (start + dt.timedelta(seconds=BAD_START + BAD_LENGTH)).isoformat(),
        ],
        "end": (start + dt.timedelta(milliseconds=records[-1].ms)).isoformat(),
        "records": len(records),
        "continuation_lines": continuation,
        "error_times": errors,
        "metrics": {
            metric: [[*labels, n] for labels, n in sorted(c.items())]
            for metric, c in sorted(tally.items())
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="-", help="log file to write (- is stdout)")
    parser.add_argument("--lines", type=int, default=4000, help="lines to write (at least)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--start",
        default="2026-01-01T10:00:00",
        help="time of the first line, ISO 8601 (written as is: asctime has no zone)",
    )
    parser.add_argument("--counts", help="also write what was logged, as JSON, to this file")
    args = parser.parse_args()

    start = dt.datetime.fromisoformat(args.start).replace(tzinfo=None)
    records = Bot(args.seed).run(args.lines)
    text = "\n".join(format_lines(records, start.replace(tzinfo=dt.UTC))) + "\n"
    if args.out == "-":
        print(text, end="")
    else:
        Path(args.out).write_text(text)
    if args.counts:
        Path(args.counts).write_text(json.dumps(counts(records, start), indent=1) + "\n")


if __name__ == "__main__":
    main()
