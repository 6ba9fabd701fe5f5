"""chatwatch end to end vs mtail vs a bare read+split+orjson floor, on the same file.

    python -m bench metrics            (part of `make bench`)
    python -m bench.bench_metrics [--lines 200000]

Every contender runs in its own process on the reference workload (bench/workload.py),
so each gets a clean heap and its own CPU time and peak RSS (from wait4):

* floor     read the file in 256 KiB chunks, split lines, orjson.loads each, keep nothing.
* chatwatch the real FileSource (agent/sources/tail.py) tailing the file from the
            beginning -> json decoder -> Extractor (9 definitions) -> Store, timed until
            the store has counted every line.
* mtail     /usr/bin/mtail --one_shot with bench/mtail/chatbot.mtail (same 9 metrics),
            GOMAXPROCS=1 so it also gets one core; its counts are checked against what
            the generator wrote, as are chatwatch's.

mtail runs a second time as it does by default (GOMAXPROCS = every core), which costs it
more CPU for the same lines. The lines per CPU-second over that mtail's is the goal (>= 8x,
from a 7.5x baseline measured that way), printed as a `GOAL` line with the stricter ratio
over one-core mtail beside it.
Then: RSS of a chatwatch process holding 10k active series (after a snapshot and a
scrape), and the idle CPU of a real `chatwatch run` over 10 s of a quiet log.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson

from bench.workload import METRICS, expected_counts, mtail_command, write_log

HERE = Path(__file__).resolve().parent
CHUNK = 256 * 1024
MTAIL_CPU_RATIO = 8.0
"""Issue 13's goal: chatwatch's lines per CPU-second over mtail's, on the reference workload."""


# -- workers (each runs in its own process) ---------------------------------------------


def _rss_kib(field: str = "VmRSS") -> int:
    """Resident memory now (VmRSS) or at its peak (VmHWM) of this process, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def worker_floor(path: str, lines: int) -> dict[str, Any]:
    loads = orjson.loads
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    rest = b""
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            for line in parts:
                loads(line)
            n += len(parts)
    return {"lines": n, "wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}


def worker_chatwatch(path: str, lines: int) -> dict[str, Any]:
    from agent.metrics.config import MetricConfig
    from agent.metrics.extract import Extractor
    from agent.metrics.store import Store
    from agent.sources.checkpoint import Checkpoints
    from agent.sources.config import SourceConfig
    from agent.sources.tail import FileSource
    from agent.support.selfmetrics import SelfMetrics

    async def run() -> dict[str, Any]:
        stats = SelfMetrics()
        store = Store(stats)
        extractor = Extractor([MetricConfig.model_validate(m) for m in METRICS], store, stats)
        state = Path(tempfile.mkdtemp(prefix="chatwatch-bench-"))
        cfg = SourceConfig(name="bench", paths=[path], start_at="beginning", format="json")
        source = FileSource(cfg, extractor, Checkpoints(state / "cp.json", stats), stats)
        events = store.families["chatbot_log_events_total"].series

        def seen() -> int:
            return int(sum(cell[0] for cell in events.values()))

        t0, c0 = time.perf_counter(), time.process_time()
        task = asyncio.create_task(source.run())
        while seen() < lines:
            if task.done():
                break
            await asyncio.sleep(0.002)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        await source.stop()
        await task
        shutil.rmtree(state, ignore_errors=True)
        counts: dict[str, dict[str, float]] = {}
        for name, fam in store.families.items():
            if fam.kind == "histogram":
                counts[name + "_count"] = {"|".join(k): sum(v[:-1]) for k, v in fam.series.items()}
            else:
                counts[name] = {"|".join(k): v[0] for k, v in fam.series.items()}
        return {"lines": seen(), "wall": wall, "cpu": cpu, "counts": counts}

    return asyncio.run(run())


def _worker_series(path: str, histograms: bool) -> dict[str, Any]:
    """A process holding the reference metrics plus per-user series up to 10k.

    `histograms=False`: 10k series as Prometheus counts them (every exposed sample,
    histogram buckets included), the extra ones a counter by user.
    `histograms=True`: 10k label sets, about half of them histograms with the default 14
    buckets (each exposing 17 samples): a much heavier case, shown for scale.
    """
    from agent.decode.events import Origin
    from agent.metrics.config import MetricConfig
    from agent.metrics.exposition import collector
    from agent.metrics.extract import Extractor
    from agent.metrics.store import Store
    from agent.support.selfmetrics import SelfMetrics

    gc.collect()
    base = _rss_kib()
    per_user: list[dict[str, Any]] = [
        {
            "name": "chatbot_user_requests_total",
            "type": "counter",
            "match": {"event": "user_request"},
            "labels": {"user": "user_id", "route": "route"},
            "max_series": 10_000,
        }
    ]
    if histograms:
        per_user.append(
            {
                "name": "chatbot_user_latency_seconds",
                "type": "histogram",
                "match": {"event": "user_request"},
                "value": "ms",
                "scale": 0.001,
                "labels": {"user": "user_id"},
                "max_series": 10_000,
            }
        )
    stats = SelfMetrics()
    store = Store(stats)
    ex = Extractor([MetricConfig.model_validate(m) for m in [*METRICS, *per_user]], store, stats)
    origin = Origin("bench", path)
    with open(path, "rb") as f:
        batch: list[dict[str, Any]] = []
        for line in f:
            batch.append(orjson.loads(line))
            if len(batch) == 1000:
                ex(origin, batch)
                batch = []
        ex(origin, batch)
    if histograms:
        fixed = sum(len(f.series) for f in store.families.values())
        users = (10_000 - fixed) // 2 + 1
    else:
        users = 10_000 - sum(1 for _ in store.snapshot())
    for start in range(0, users, 1000):
        batch = [
            {"event": "user_request", "user_id": f"user-{u:05d}", "route": "/api/chat", "ms": u}
            for u in range(start, min(users, start + 1000))
        ]
        ex(origin, batch)
        ex(origin, batch)
    gc.collect()
    steady = _rss_kib()
    label_sets = sum(len(f.series) for f in store.families.values())
    # What the app does every second (snapshot for the rules' history) and per scrape.
    samples = sum(1 for _ in store.snapshot())
    scrape = len(collector(store, stats).text())
    gc.collect()
    return {
        "label_sets": label_sets,
        "samples": samples,
        "scrape_bytes": scrape,
        "rss_base_kib": base,
        "rss_steady_kib": steady,
        "rss_kib": _rss_kib(),
    }


def worker_series10k(path: str, lines: int) -> dict[str, Any]:
    return _worker_series(path, histograms=False)


def worker_labelsets10k(path: str, lines: int) -> dict[str, Any]:
    return _worker_series(path, histograms=True)


WORKERS = {
    "floor": worker_floor,
    "chatwatch": worker_chatwatch,
    "series10k": worker_series10k,
    "labelsets10k": worker_labelsets10k,
}


# -- driver -----------------------------------------------------------------------------


def _run_worker(kind: str, path: Path, lines: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.bench_metrics", "--worker", kind, str(path), str(lines)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=HERE.parent)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {kind} failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out)
    result["proc_cpu"] = usage.ru_utime + usage.ru_stime
    return result


def _run_mtail(path: Path, one_core: bool = True) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "GOMAXPROCS"}
    if one_core:
        env["GOMAXPROCS"] = "1"
    port = _free_port()
    cmd = mtail_command(path, port, HERE / "mtail", "--one_shot", "--one_shot_format=prometheus")
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen(cmd, stdout=out_file, stderr=err_file, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if proc.returncode != 0:
        raise RuntimeError(f"mtail failed: {err.decode(errors='replace')[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "text": out.decode()}


def _mtail_counts(text: str) -> dict[str, dict[str, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    label_order = {m["name"]: sorted(m.get("labels", {})) for m in METRICS}
    counts: dict[str, dict[str, float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            base = s.name.removesuffix("_count")
            if s.name.endswith("_bucket") or s.name.endswith("_sum") or base not in label_order:
                continue
            key = "|".join(s.labels[n] for n in label_order[base])
            counts.setdefault(s.name, {})[key] = s.value
    return counts


def _check(name: str, counts: dict[str, dict[str, float]], lines: int) -> list[str]:
    """Compare a contender's counts with what the generator wrote; returns mismatches."""
    exp = expected_counts(lines)
    want = {
        "chatbot_http_requests_total": {f"{r}|{s}": n for (r, s), n in exp.requests.items()},
        "chatbot_http_request_duration_seconds_count": dict(exp.duration_count),
        "chatbot_llm_prompt_tokens_total": dict(exp.llm_prompt_tokens),
        "chatbot_conversations_total": {f"{c}|{r}": n for (c, r), n in exp.conversations.items()},
        "chatbot_auth_failures_total": dict(exp.auth_failures),
        # labels sorted by name: event, level
        "chatbot_log_events_total": {f"{e}|{lv}": n for (lv, e), n in exp.events.items()},
    }
    problems = []
    for metric, expected in want.items():
        got = {k: float(v) for k, v in counts.get(metric, {}).items()}
        if got != {k: float(v) for k, v in expected.items()}:
            problems.append(f"{name}: {metric} differs from what was written")
    return problems


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _idle_cpu(tmp: Path, seconds: float = 10.0) -> tuple[float, str]:
    """CPU share of a real `chatwatch run` tailing a quiet log, measured over `seconds`."""
    import yaml

    log = tmp / "quiet.log"
    write_log(log, 1000, seed=7)
    port = _free_port()
    cfg = {
        "sources": [{"name": "bot", "paths": [str(log)], "start_at": "beginning"}],
        "state_dir": str(tmp / "state"),
        "server": {"listen": f"127.0.0.1:{port}"},
        "metrics": METRICS,
    }
    (tmp / "state").mkdir(exist_ok=True)
    cfg_path = tmp / "chatwatch.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "warning", "run", "-c", str(cfg_path)],
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                return float("nan"), f"chatwatch run exited: {err[-500:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                return float("nan"), "chatwatch run did not become ready in 30 s"
            time.sleep(0.2)
        time.sleep(1.0)  # let the first evaluation and checkpoint settle

        def cpu_ticks() -> int:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime

        hz = os.sysconf("SC_CLK_TCK")
        c0, t0 = cpu_ticks(), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_ticks(), time.monotonic()
        return (c1 - c0) / hz / (t1 - t0) * 100, "real `chatwatch run` (server, evaluation loop)"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs per contender")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--worker", nargs=3, metavar=("KIND", "FILE", "LINES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.worker:
        kind, path, lines = args.worker
        result = WORKERS[kind](path, int(lines))
        # The peak of this process only: ru_maxrss from wait4 can include the parent's
        # memory at fork time, before exec.
        result["maxrss_kib"] = _rss_kib("VmHWM")
        print(json.dumps(result))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="chatwatch-bench-"))
    try:
        return _drive(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drive(args: argparse.Namespace, tmp: Path) -> int:
    lines = args.lines
    log = tmp / "reference.log"
    size = write_log(log, lines)
    print(f"== metrics: {lines} lines, {size / lines:.0f} bytes/line, 9 metric definitions ==")

    def best(kind: str) -> dict[str, Any]:
        runs = [_run_worker(kind, log, lines) for _ in range(args.repeat)]
        return min(runs, key=lambda r: r["wall"])

    floor = best("floor")
    cw = best("chatwatch")
    mtail_runs = [_run_mtail(log) for _ in range(args.repeat)]
    mt = min(mtail_runs, key=lambda r: r["wall"])
    # mtail is timed as a whole process; take off its fixed cost (start, compile, exit)
    # measured on a 1-line log, so its lines/s compares with chatwatch's in-process timing.
    tiny = tmp / "one.log"
    write_log(tiny, 1)
    mtail_fixed = min((_run_mtail(tiny) for _ in range(3)), key=lambda r: r["wall"])
    # mtail as it runs by default (GOMAXPROCS = all cores): the same work costs it more
    # CPU (the Go runtime's other threads), which is how the issue measured its baseline.
    md = min((_run_mtail(log, one_core=False) for _ in range(args.repeat)), key=lambda r: r["cpu"])
    md_fixed = min((_run_mtail(tiny, one_core=False) for _ in range(3)), key=lambda r: r["cpu"])

    problems = _check("chatwatch", cw.pop("counts"), lines)
    if cw["lines"] != lines:
        problems.append(f"chatwatch: counted {cw['lines']} lines, wrote {lines}")
    problems += _check("mtail", _mtail_counts(mt["text"]), lines)

    # Two views of speed: lines per second of wall time, and lines per second of CPU
    # time (what one core delivers; steadier when other work shares the machine).
    # mtail runs as a whole process: its fixed cost (start, compile, exit), measured on a
    # 1-line log, is taken off so it compares with the in-process timings.
    wall = {
        "floor": lines / floor["wall"],
        "chatwatch": lines / cw["wall"],
        "mtail": lines / max(1e-9, mt["wall"] - mtail_fixed["wall"]),
        "mtail_default": lines / max(1e-9, md["wall"] - md_fixed["wall"]),
    }
    cpu = {
        "floor": lines / floor["cpu"],
        "chatwatch": lines / cw["cpu"],
        "mtail": lines / max(1e-9, mt["cpu"] - mtail_fixed["cpu"]),
        "mtail_default": lines / max(1e-9, md["cpu"] - md_fixed["cpu"]),
    }
    print(f"{'contender':<46}{'lines/s':>11}{'lines/CPU-s':>13}{'vs floor':>10}")
    rows = [
        ("floor: read + split + orjson.loads", "floor"),
        ("chatwatch: FileSource->decode->extract->store", "chatwatch"),
        ("mtail --one_shot (GOMAXPROCS=1)", "mtail"),
        ("mtail --one_shot (default GOMAXPROCS)", "mtail_default"),
    ]
    for label, key in rows:
        print(f"{label:<46}{wall[key]:>11,.0f}{cpu[key]:>13,.0f}{cpu[key] / cpu['floor']:>9.0%}")
    print(
        f"(mtail: {mt['wall']:.2f} s wall / {mt['cpu']:.2f} s CPU for the run, of which "
        f"{mtail_fixed['wall']:.2f} s / {mtail_fixed['cpu']:.2f} s fixed cost, taken off)"
    )
    print(
        f"chatwatch / mtail: {wall['chatwatch'] / wall['mtail']:.2f}x wall, "
        f"{cpu['chatwatch'] / cpu['mtail']:.2f}x CPU (target >= 5x)"
    )
    # The goal's baseline (7.5x when the issue was filed) was mtail as it runs by default;
    # against mtail held to one core (its most CPU-frugal) the ratio is lower: both shown.
    per_cpu = cpu["chatwatch"] / cpu["mtail_default"]
    strict = cpu["chatwatch"] / cpu["mtail"]
    print(
        f"GOAL throughput on the reference workload >= {MTAIL_CPU_RATIO:g}x mtail per "
        f"CPU-second: {'met' if per_cpu >= MTAIL_CPU_RATIO else 'NOT MET'} "
        f"({per_cpu:.2f}x mtail as it runs by default: {cpu['chatwatch']:,.0f} vs "
        f"{cpu['mtail_default']:,.0f} lines/CPU-s; {strict:.2f}x mtail on one core, "
        f"{cpu['mtail']:,.0f}; {lines} lines)"
    )
    print(
        f"chatwatch on one core: {wall['chatwatch']:,.0f} lines/s wall, "
        f"{cpu['chatwatch']:,.0f} lines/CPU-s (target >= 300,000)"
    )
    print(
        f"chatwatch CPU during the run: {cw['cpu']:.2f} s for {cw['wall']:.2f} s wall; "
        f"peak RSS {cw['maxrss_kib'] / 1024:.1f} MiB "
        f"(floor process: {floor['maxrss_kib'] / 1024:.1f} MiB)"
    )
    for kind, what in (
        ("series10k", "10k series (exposed samples, as Prometheus counts them)"),
        ("labelsets10k", "10k label sets, half of them 14-bucket histograms"),
    ):
        r = _run_worker(kind, log, lines)
        print(
            f"RSS holding {what}: {r['rss_steady_kib'] / 1024:.1f} MiB; "
            f"{r['rss_kib'] / 1024:.1f} MiB after a snapshot and a scrape; "
            f"peak {r['maxrss_kib'] / 1024:.1f} MiB "
            f"[{r['label_sets']} label sets, {r['samples']} samples, "
            f"{r['scrape_bytes'] / 1024:.0f} KiB scrape; interpreter + imports alone "
            f"{r['rss_base_kib'] / 1024:.1f} MiB; target <= 80 MiB]"
        )
    if args.idle_seconds > 0:
        idle, how = _idle_cpu(tmp, args.idle_seconds)
        print(
            f"idle CPU over {args.idle_seconds:.0f} s of a quiet log: {idle:.2f}% of a core ({how})"
        )
    for p in problems:
        print("MISMATCH:", p)
    if not problems:
        print("counts: chatwatch and mtail both match what was written")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
