"""Micro-benchmark of the decoders: lines/s of `Decoder.decode` alone, no I/O.

    python bench/bench_decode.py [--lines 200000] [--batch 1000] [--repeat 5]

The workload is the reference chatbot log (http requests 70%, LLM calls 22%, conversation
outcomes 5%, auth failures 3%; ~250 bytes a line). Each format is fed the same records in
its own framing, in batches (a fresh `out` list per batch, as the file source does), and
the best of `--repeat` runs is printed. The floor is a bare `for line: orjson.loads(line)`
loop that keeps nothing: the price of parsing alone.

Multi-line events (`multiline: {preset: python}`) are measured on the `regex` framing too:
once on the same lines (no traceback: the price of judging each line), and once with
Python tracebacks (chained, 12 lines each) after some records, so that `--traceback-share`
of all lines (5%) are traceback lines. Rates count input lines. The check: with
tracebacks, at least half the throughput of the plain `regex` source (issue 14); a run
below it fails.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.decode.config import MultilineConfig
from agent.decode.formats import make_decoder
from agent.sources.config import SourceConfig

TRACEBACK = [
    b"Traceback (most recent call last):",
    b'  File "/app/chatbot/llm.py", line 61, in complete',
    b"    response = await self._client.chat.completions.create(",
    b"               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    b"httpx.ReadTimeout: timed out",
    b"",
    b"The above exception was the direct cause of the following exception:",
    b"",
    b"Traceback (most recent call last):",
    b'  File "/usr/local/lib/python3.11/site-packages/openai/_base_client.py", line 1612, in _r',
    b"    raise APITimeoutError(request=request) from err",
    b"openai.APITimeoutError: Request timed out.",
]
MIN_MULTILINE_RATIO = 0.5
"""With 5% traceback lines, the python preset keeps at least this share of `regex`'s rate."""

ROUTES = ["/api/chat", "/api/chat/stream", "/api/history", "/api/feedback", "/healthz"]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet", "llama-3-70b"]


def records(n: int, seed: int = 1) -> list[dict[str, object]]:
    rnd = random.Random(seed)
    out: list[dict[str, object]] = []
    for i in range(n):
        base: dict[str, object] = {
            "timestamp": f"2026-11-23T09:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z",
            "level": "info",
            "logger": "chatbot",
            "request_id": f"req-{rnd.getrandbits(48):012x}",
            "session_id": f"sess-{rnd.randrange(5000):05d}",
        }
        roll = rnd.random()
        if roll < 0.70:
            base |= {
                "event": "http_request",
                "method": "POST",
                "route": rnd.choice(ROUTES),
                "status_code": rnd.choice([200, 200, 200, 201, 400, 429, 500]),
                "duration_ms": round(rnd.uniform(5, 3000), 2),
            }
        elif roll < 0.92:
            base |= {
                "event": "llm_call",
                "model": rnd.choice(MODELS),
                "tokens_in": rnd.randrange(50, 4000),
                "tokens_out": rnd.randrange(10, 1500),
                "cost_usd": round(rnd.uniform(0.0001, 0.05), 6),
                "latency_ms": round(rnd.uniform(200, 20000), 1),
            }
        elif roll < 0.97:
            base |= {
                "event": "conversation_ended",
                "category": rnd.choice(["billing", "tech", "sales"]),
                "resolution": rnd.choice(["resolved", "escalated", "abandoned"]),
                "turns": rnd.randrange(1, 30),
            }
        else:
            base |= {
                "event": "auth_failure",
                "level": "warning",
                "reason": rnd.choice(["bad_token", "expired", "rate_limited"]),
            }
        out.append(base)
    return out


def _logfmt(rec: dict[str, object]) -> bytes:
    parts = []
    for k, v in rec.items():
        s = str(v)
        parts.append(f'{k}="{s}"' if " " in s else f"{k}={s}")
    return " ".join(parts).encode()


def framings(recs: list[dict[str, object]]) -> dict[str, list[bytes]]:
    json_lines = [orjson.dumps(r) for r in recs]
    cri = [b"2026-11-23T09:30:05.123456789Z stdout F " + line for line in json_lines]
    docker = [
        orjson.dumps(
            {"log": line.decode() + "\n", "stream": "stdout", "time": "2026-11-23T09:30:05Z"}
        )
        for line in json_lines
    ]
    text = [
        f"2026-11-23 09:30:05,123 [{str(r['level']).upper()}] [req:{r['request_id']}] "
        f"[session:{r['session_id']}] chatbot - {r['event']} done".encode()
        for r in recs
    ]
    return {
        "json": json_lines,
        "cri": cri,
        "docker": docker,
        "logfmt": [_logfmt(r) for r in recs],
        "regex": text,
        "auto": json_lines,
    }


REGEX = (
    r"^(?P<asctime>\S+ \S+) \[(?P<levelname>\w+)\] \[req:(?P<request_id>[^\]]*)\] "
    r"\[session:(?P<session_id>[^\]]*)\] (?P<name>\S+) - (?P<message>.*)$"
)


def with_tracebacks(lines: list[bytes], share: float) -> tuple[list[bytes], int]:
    """`lines` with a traceback after every k-th record, so that `share` of all lines are
    traceback lines; and how many tracebacks that is."""
    per = len(TRACEBACK)
    count = round(len(lines) * share / (1 - share) / per)
    every = max(1, len(lines) // max(count, 1))
    out: list[bytes] = []
    added = 0
    for i, line in enumerate(lines):
        out.append(line)
        if added < count and i % every == every - 1:
            out.extend(TRACEBACK)
            added += 1
    return out, added


def best_rate(run: Callable[[], object], n: int, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = max(best, n / (time.perf_counter() - start))
    return best


def decode_all(cfg: SourceConfig, batches: list[list[bytes]], errors: list[str]) -> int:
    """Decode every batch with a fresh decoder, as one file would be; return the events."""
    decode = make_decoder(cfg, errors.append).decode
    total = 0
    for batch in batches:
        out: list[dict[str, object]] = []
        decode(batch, out)
        total += len(out)
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--formats", default="json,cri,docker,logfmt,regex,auto")
    ap.add_argument("--traceback-share", type=float, default=0.05)
    args = ap.parse_args()

    data = framings(records(args.lines))
    n = args.lines
    avg = sum(map(len, data["json"])) / n
    print(f"{n} lines, {avg:.0f} bytes per JSON line, batches of {args.batch}")

    json_lines = data["json"]
    loads = orjson.loads

    def floor() -> None:
        for line in json_lines:
            loads(line)

    floor_rate = best_rate(floor, n, args.repeat)
    print(f"{'floor (bare orjson.loads)':28s} {floor_rate:12,.0f} lines/s")

    errors: list[str] = []
    rates: dict[str, float] = {}
    for fmt in args.formats.split(","):
        cfg = SourceConfig(name="bench", paths=["/bench"], format=fmt, regex=REGEX)
        lines = data[fmt]
        batches = [lines[i : i + args.batch] for i in range(0, n, args.batch)]
        run = functools.partial(decode_all, cfg, batches, errors)
        rate = rates[fmt] = best_rate(run, n, args.repeat)
        ratio = rate / floor_rate
        print(f"{'decode ' + fmt:28s} {rate:12,.0f} lines/s  ({ratio:.2f} x floor)")
        events = run()
        if events != n:
            raise SystemExit(f"{fmt}: {events} events from {n} lines, errors {set(errors)}")
    if "regex" in rates:
        return multiline(data["regex"], args)
    return 0


def multiline(lines: list[bytes], args: argparse.Namespace) -> int:
    """The python preset on the `regex` framing, without and with tracebacks, against the
    plain `regex` source measured in turn with it (the same machine load for all three)."""
    plain = SourceConfig(name="bench", paths=["/bench"], format="regex", regex=REGEX)
    preset = plain.model_copy(update={"multiline": MultilineConfig(preset="python")})
    joined, tracebacks = with_tracebacks(lines, args.traceback_share)
    runs = {
        "regex (again, for the ratio)": (plain, lines),
        "regex + python preset, no traceback": (preset, lines),
        f"regex + python preset, {args.traceback_share:.0%} traceback lines": (preset, joined),
    }
    best = dict.fromkeys(runs, 0.0)
    for _ in range(args.repeat):
        for name, (cfg, workload) in runs.items():
            run = functools.partial(_decode, cfg, workload, args.batch)
            best[name] = max(best[name], best_rate(run, len(workload), 1))
    base = best["regex (again, for the ratio)"]
    for name, (cfg, workload) in runs.items():
        errors: list[str] = []
        events = _decode(cfg, workload, args.batch, errors)
        if events != len(lines) or errors:
            raise SystemExit(f"{name}: {events} events, not {len(lines)}; errors {set(errors)}")
        print(f"{name:44s} {best[name]:12,.0f} lines/s  ({best[name] / base:.2f} x regex)")
    share = (len(joined) - len(lines)) / len(joined)
    print(
        f"  {tracebacks} tracebacks of {len(TRACEBACK)} lines: {share:.1%} of {len(joined)} lines"
    )
    ratio = min(best[name] for name in list(runs)[1:]) / base
    if ratio < MIN_MULTILINE_RATIO:
        print(f"FAIL: the python preset at {ratio:.2f} x regex, below {MIN_MULTILINE_RATIO}")
        return 1
    return 0


def _decode(
    cfg: SourceConfig, lines: list[bytes], batch: int, errors: list[str] | None = None
) -> int:
    """One file's lines through a fresh decoder in batches, then its flush; the events."""
    decoder = make_decoder(cfg, (errors if errors is not None else []).append)
    total = 0
    for i in range(0, len(lines), batch):
        out: list[dict[str, object]] = []
        decoder.decode(lines[i : i + batch], out)
        total += len(out)
    out = []
    decoder.flush(out)
    return total + len(out)


if __name__ == "__main__":
    sys.exit(main())
