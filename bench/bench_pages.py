"""Web page server time with 10k series and 200 rules (issue 11: under 200 ms each).

    python bench/bench_pages.py [--series 10000] [--rules 200] [--minutes 5] [--runs 5]

A real `Agent` (not started: no sources, no server) loads 200 alerting rules (bench_rules'
50 typical chatbot rules at four thresholds each), its history holds 10k series sampled
every second for `--minutes`, and the rules are evaluated at the end so that some fire.
Each page is then asked of the agent's ASGI app directly (no socket), `--runs` times;
printed: the median and the worst time per page. /graph draws a rule's expression (its
`generatorURL`) over 5 minutes, and over 15 minutes on the whole request counter.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.app import Agent
from agent.config import load
from agent.server.routes import App
from bench.bench_rules import RULES, make_series, snapshot

GRAPHED = RULES[0]
"""A typical alert's expression, over 1,560 of the 10k series."""


def pages() -> list[str]:
    return [
        "/",
        "/alerts",
        "/alerts?filter=" + urlencode({"": 'route="/api/chat"'})[1:],
        "/rules",
        "/config",
        "/graph?" + urlencode({"g0.expr": GRAPHED, "g0.tab": "1", "g0.range_input": "5m"}),
        "/graph?" + urlencode({"g0.expr": "sum by (status) (rate(http_requests_total[1m]))"}),
    ]


def build_agent(folder: Path, series: int, rules: int, minutes: float) -> Agent:
    """An agent whose rules were evaluated over `minutes` of history of `series` series."""
    lines = ["groups:"]
    for g in range(0, rules, 50):
        lines.append(f"  - name: group-{g // 50}\n    rules:")
        for i in range(g, min(g + 50, rules)):
            expr = RULES[i % len(RULES)].replace('"', '\\"')
            lines.append(
                f'      - alert: Bench{i}\n        expr: "{expr}"\n'
                f"        labels: {{severity: warning}}\n"
                f'        annotations: {{summary: "value {{{{ $value }}}}"}}'
            )
    (folder / "rules.yml").write_text("\n".join(lines) + "\n")
    (folder / "chatwatch.yaml").write_text(
        f"""
sources: [{{name: chatbot, paths: ["{folder}/chatbot.log"], format: json}}]
state_dir: {folder}/state
rule_files: ["rules.yml"]
evaluation_interval: 1s
"""
    )
    cfg = load(folder / "chatwatch.yaml")
    agent = Agent(str(folder / "chatwatch.yaml"), cfg, install_signals=False)
    history = agent.pipeline.history
    data = make_series(series)
    now = time.time()
    start = now - minutes * 60
    agent.started_at = start
    steps = int(minutes * 60)
    for i in range(steps + 1):
        t = start + i
        history.append(t, snapshot(data, t - start + 1000))
    agent.pipeline.rules.evaluate(now)
    return agent


async def request(app: App, path_qs: str) -> tuple[int, bytes]:
    path, _, qs = path_qs.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": qs.encode(),
        "headers": [],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], sent[1]["body"]


def measure(agent: Agent, runs: int) -> dict[str, list[float]]:
    """Seconds per request of each page, `runs` times each."""
    app = App(agent)
    times: dict[str, list[float]] = {}

    async def go() -> None:
        for path in pages():
            for _ in range(runs):
                t0 = time.perf_counter()
                status, body = await request(app, path)
                times.setdefault(path, []).append(time.perf_counter() - t0)
                if status != 200:
                    raise AssertionError(f"{path}: {status} {body[:300]!r}")

    asyncio.run(go())
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--check-ms", type=float, default=200)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        agent = build_agent(Path(tmp), args.series, args.rules, args.minutes)
        alerts = len(agent.alerts_api()["alerts"])
        print(
            f"workload: {len(agent.pipeline.history)} series, {args.rules} rules, "
            f"{alerts} active alerts, {args.minutes:g} min of history "
            f"(built in {time.perf_counter() - t0:.1f} s)"
        )
        times = measure(agent, args.runs)
    worst = 0.0
    for path, ts in times.items():
        med = statistics.median(ts)
        worst = max(worst, med)
        print(f"  {med * 1000:7.1f} ms median  {max(ts) * 1000:7.1f} ms max   {path[:90]}")
    ok = worst * 1000 < args.check_ms
    print(
        f"slowest page median {worst * 1000:.1f} ms: {'OK' if ok else 'over'} {args.check_ms:g} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
