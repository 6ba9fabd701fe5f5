"""Series scaling and the realistic-rate case: chatwatch vs mtail in the same run.

    python -m bench scale             (part of `make bench`)
    python -m bench.bench_scale [--sizes 10000,100000] [--idle-seconds 10] [--rate-seconds 10]

Both run as real processes (`chatwatch run`, `mtail` with bench/mtail/chatbot.mtail plus
a per-user program), side by side on the same log file, so the machine's load at the
moment weighs on both alike. Each process's CPU and RSS are its own (/proc).

Series scaling, for 10k and 100k per-user counter series, then 10k and 100k per-user
histogram label sets (8 buckets: 11 samples each), beside the reference workload's 9
metrics: both start on an empty log, the lines are appended (one per user, plus 2,000
reference lines), and once both have counted them and gone quiet:

* RSS        resident memory, before and after one scrape (the larger is compared), and
             the peak of the whole run (VmHWM: reading the lines and the scrape included)
* idle CPU   share of a core over `--idle-seconds` with no new lines and no scrapes
* scrape     one GET /metrics as Prometheus 2.42 sends it (OpenMetrics preferred, gzip):
             wall time to the last byte, and the CPU the process spent on it

The realistic-rate case: the reference workload appended at a steady 2,000 lines/s for
`--rate-seconds`; CPU per line and share of a core, each process.

Each goal of issue 13 is printed as a `GOAL` line, met or not met with its figures;
`python -m bench` collects these lines from every benchmark into one table at the end.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.workload import HISTOGRAM_BUCKETS, METRICS, make_event, mtail_command

HERE = Path(__file__).resolve().parent
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
"""What Prometheus 2.42 asks a target for."""

REFERENCE_LINES = 2000
RATE = 2000

USER_COUNTER: dict[str, Any] = {
    "name": "chatbot_user_requests_total",
    "type": "counter",
    "help": "Requests by user.",
    "match": {"event": "user_request"},
    "labels": {"user": "user_id"},
}
USER_HISTOGRAM: dict[str, Any] = {
    "name": "chatbot_user_latency_seconds",
    "type": "histogram",
    "help": "Request latency by user.",
    "match": {"event": "user_request"},
    "value": "ms",
    "scale": 0.001,
    "buckets": HISTOGRAM_BUCKETS,
    "labels": {"user": "user_id"},
}
MTAIL_USERS = """
counter chatbot_user_requests_total by user
histogram chatbot_user_latency_seconds by user buckets {buckets}

/"event":"user_request","user_id":"(?P<user>[^"]*)","ms":(?P<ms>\\d+)/ {{
{body}
}}
"""


# -- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int

    def cpu(self) -> float:
        """CPU seconds (user + system) so far."""
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ

    def bytes_read(self) -> int:
        """Bytes the process has read so far (any file; the log, once it is started)."""
        for line in Path(f"/proc/{self.popen.pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        return 0

    def rss_mib(self) -> float:
        pages = int(Path(f"/proc/{self.popen.pid}/statm").read_text().split()[1])
        return pages * PAGE / 2**20

    def peak_rss_mib(self) -> float:
        """The highest RSS so far (VmHWM): reading the lines and the scrape included."""
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def get(self, path: str, headers: dict[str, str] | None = None) -> bytes:
        url = f"http://127.0.0.1:{self.port}{path}"
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=120) as response:
            body: bytes = response.read()
            if response.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            return body

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready in {timeout:.0f} s")


def start_chatwatch(tmp: Path, log: Path, metrics: list[dict[str, Any]]) -> Proc:
    port = _free_port()
    state = tmp / "chatwatch-state"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir()
    cfg = {
        "sources": [{"name": "bot", "paths": [str(log)], "start_at": "beginning"}],
        "state_dir": str(state),
        "server": {"listen": f"127.0.0.1:{port}"},
        "metrics": [{**m, "max_series": 200_000} for m in metrics],
    }
    path = tmp / "chatwatch.yaml"
    path.write_text(yaml.safe_dump(cfg))
    popen = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "warning", "run", "-c", str(path)],
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "chatwatch.stderr").open("wb"),
    )
    proc = Proc("chatwatch", popen, port)

    def ready() -> bool:
        if popen.poll() is not None:
            err = (tmp / "chatwatch.stderr").read_text(errors="replace")[-1000:]
            raise RuntimeError(f"chatwatch exited: {err}")
        return proc.get("/-/ready") == b"Ready\n"

    _wait("chatwatch", ready)
    return proc


def start_mtail(tmp: Path, log: Path, user_kind: str | None) -> Proc:
    progs = tmp / "mtail-progs"
    shutil.rmtree(progs, ignore_errors=True)
    progs.mkdir()
    shutil.copy(HERE / "mtail" / "chatbot.mtail", progs / "chatbot.mtail")
    if user_kind is not None:
        body = (
            "  chatbot_user_requests_total[$user]++"
            if user_kind == "counter"
            else "  chatbot_user_latency_seconds[$user] = float($ms) / 1000.0"
        )
        buckets = ", ".join(str(b) for b in HISTOGRAM_BUCKETS)
        program = MTAIL_USERS.format(buckets=buckets, body=body)
        if user_kind == "counter":  # declare only what is used: mtail exports declared ones
            program = program.replace(
                f"histogram chatbot_user_latency_seconds by user buckets {buckets}\n", ""
            )
        else:
            program = program.replace("counter chatbot_user_requests_total by user\n", "")
        (progs / "users.mtail").write_text(program)
    port = _free_port()
    popen = subprocess.Popen(
        mtail_command(log, port, progs, "--emit_prog_label=false"),
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "mtail.stderr").open("wb"),
    )
    proc = Proc("mtail", popen, port)

    def ready() -> bool:
        if popen.poll() is not None:
            err = (tmp / "mtail.stderr").read_text(errors="replace")[-1000:]
            raise RuntimeError(f"mtail exited: {err}")
        proc.get("/metrics")
        return True

    _wait("mtail", ready)
    return proc


def settle(procs: list[Proc], read: dict[str, int], size: int, timeout: float = 120.0) -> None:
    """Wait until every process has read `size` more bytes than `read` (its `bytes_read()`
    before the lines were appended), then until its CPU use calms for a second (the work
    that follows new series is over; at most 20 s, as a process busy every second never
    calms: its idle CPU then says so)."""
    deadline = time.monotonic() + timeout
    while any(p.bytes_read() - read[p.name] < size for p in procs):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not read to the end in {timeout:.0f} s")
        time.sleep(0.1)
    last = {p.name: p.cpu() for p in procs}
    calm, until = 0, time.monotonic() + 20.0
    while time.monotonic() < until and calm < 4:
        time.sleep(0.25)
        now = {p.name: p.cpu() for p in procs}
        calm = 0 if any(now[n] - last[n] > 0.02 for n in now) else calm + 1
        last = now


def user_lines(n: int, seed: int = 1) -> list[bytes]:
    return [
        b'{"ts":"2026-11-23T09:00:00.000Z","level":"info","event":"user_request",'
        b'"user_id":"user-%07d","ms":%d}' % (u, (u * 37) % 12000)
        for u in range(n)
    ]


def reference_lines(n: int, seed: int = 42) -> list[bytes]:
    import random

    rng = random.Random(seed)
    return [orjson.dumps(make_event(rng, i)) for i in range(n)]


def append(log: Path, lines: list[bytes]) -> None:
    with log.open("ab") as f:
        for i in range(0, len(lines), 4096):
            f.write(b"\n".join(lines[i : i + 4096]) + b"\n")


def samples_of(body: bytes, name: str) -> int:
    prefix = name.encode()
    return sum(1 for line in body.split(b"\n") if line.startswith(prefix))


# -- scenarios ---------------------------------------------------------------------------


@dataclass
class Figures:
    rss_before: float
    rss_after: float
    idle: float
    """Percent of a core."""
    scrape: float
    scrape_cpu: float
    samples: int
    peak: float

    @property
    def rss(self) -> float:
        return max(self.rss_before, self.rss_after)


def scale(tmp: Path, kind: str, n: int, idle_seconds: float) -> dict[str, Figures]:
    log = tmp / f"scale-{kind}-{n}.log"
    log.write_bytes(b"")
    user = USER_COUNTER if kind == "counter" else USER_HISTOGRAM
    procs = [start_chatwatch(tmp, log, [*METRICS, user]), start_mtail(tmp, log, kind)]
    try:
        time.sleep(1.0)  # mtail opens files it finds at start a moment after serving
        read = {p.name: p.bytes_read() for p in procs}
        append(log, reference_lines(REFERENCE_LINES))
        append(log, user_lines(n))
        settle(procs, read, log.stat().st_size)
        out = {}
        rss = {p.name: p.rss_mib() for p in procs}
        cpu0 = {p.name: p.cpu() for p in procs}
        t0 = time.monotonic()
        time.sleep(idle_seconds)
        elapsed = time.monotonic() - t0
        idle = {p.name: (p.cpu() - cpu0[p.name]) / elapsed * 100 for p in procs}
        headers = {"Accept": PROMETHEUS_ACCEPT, "Accept-Encoding": "gzip"}
        for p in procs:
            c0, w0 = p.cpu(), time.perf_counter()
            body = p.get("/metrics", headers)
            wall = time.perf_counter() - w0
            time.sleep(0.3)  # CPU ticks land a moment after
            c1 = p.cpu()
            samples = samples_of(body, user["name"])
            after = p.rss_mib()
            out[p.name] = Figures(
                rss[p.name], after, idle[p.name], wall, c1 - c0, samples, p.peak_rss_mib()
            )
        return out
    finally:
        for p in procs:
            p.stop()


def realistic_rate(tmp: Path, seconds: float) -> dict[str, float]:
    """CPU seconds per 1,000 lines for each process at a steady RATE lines/s."""
    log = tmp / "rate.log"
    log.write_bytes(b"")
    procs = [start_chatwatch(tmp, log, METRICS), start_mtail(tmp, log, None)]
    try:
        time.sleep(1.0)
        lines = reference_lines(int(RATE * (seconds + 3)), seed=5)
        batch = RATE // 100  # every 10 ms, as a busy chatbot's logger flushes
        cpu0: dict[str, float] = {}
        t_start = time.monotonic()
        written = 0
        with log.open("ab", buffering=0) as f:
            for i in range(0, len(lines), batch):
                due = t_start + i / RATE
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                f.write(b"\n".join(lines[i : i + batch]) + b"\n")
                if not cpu0 and time.monotonic() - t_start >= 1.0:  # after a warm-up second
                    cpu0 = {p.name: p.cpu() for p in procs}
                    t0, written = time.monotonic(), 0
                written += batch
                if cpu0 and time.monotonic() - t0 >= seconds:
                    break
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        out = {}
        for p in procs:
            used = p.cpu() - cpu0[p.name]
            out[p.name] = used
            out[p.name + "_core"] = used / elapsed * 100
        out["lines"] = written
        out["rate"] = written / elapsed
        return out
    finally:
        for p in procs:
            p.stop()


# -- report ------------------------------------------------------------------------------


def goal(name: str, met: bool, figures: str) -> None:
    print(f"GOAL {name}: {'met' if met else 'NOT MET'} ({figures})", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--kinds", default="counter,histogram")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    tmp = Path(tempfile.mkdtemp(prefix="chatwatch-bench-scale-"))
    try:
        return _drive(tmp, sizes, kinds, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drive(tmp: Path, sizes: list[int], kinds: list[str], args: argparse.Namespace) -> int:
    print(
        f"== scale: per-user series beside the reference workload; idle over "
        f"{args.idle_seconds:.0f} s; one scrape as Prometheus asks (OpenMetrics, gzip) =="
    )
    head = (
        f"{'case':<24}{'':<10}{'RSS MiB':>8}{'after scrape':>13}{'peak':>7}{'idle CPU':>10}"
        f"{'scrape s':>9}{'(CPU s)':>8}{'samples':>9}"
    )
    print(head)
    results: dict[tuple[str, int], dict[str, Figures]] = {}
    problems = []
    for kind in kinds:
        for n in sizes:
            r = scale(tmp, kind, n, args.idle_seconds)
            results[kind, n] = r
            label = f"{n // 1000}k {'counter series' if kind == 'counter' else 'histogram sets'}"
            want = n * (1 if kind == "counter" else len(HISTOGRAM_BUCKETS) + 3)
            for name, f in r.items():
                print(
                    f"{label:<24}{name:<10}{f.rss_before:>8.0f}{f.rss_after:>13.0f}"
                    f"{f.peak:>7.0f}{f.idle:>9.1f}%{f.scrape:>9.3f}{f.scrape_cpu:>8.2f}"
                    f"{f.samples:>9}"
                )
                if f.samples != want:
                    problems.append(f"{name} {label}: {f.samples} samples, want {want}")
                label = ""
            cw, mt = r["chatwatch"], r["mtail"]
            print(
                f"{'':<24}{'ratio':<10}{cw.rss / mt.rss:>7.2f}x{'':>13}"
                f"{cw.peak / mt.peak:>6.2f}x{'':>10}{cw.scrape / mt.scrape:>8.2f}x"
            )
    rate: dict[str, float] = {}
    if args.rate_seconds > 0:
        rate = realistic_rate(tmp, args.rate_seconds)
        print(
            f"== realistic rate: the reference workload at {rate['rate']:,.0f} lines/s "
            f"for {args.rate_seconds:.0f} s =="
        )
        for name in ("chatwatch", "mtail"):
            per_line = rate[name] / rate["lines"] * 1e6
            core = rate[name + "_core"]
            print(f"{name:<10} {per_line:8.1f} us CPU per line, {core:5.1f}% of a core")

    def pair(kind: str, n: int) -> tuple[Figures, Figures] | None:
        r = results.get((kind, n))
        return (r["chatwatch"], r["mtail"]) if r else None

    def versus(cw: float, mt: float, unit: str) -> str:
        return f"{cw:.3g} {unit} vs mtail {mt:.3g} {unit}, {cw / mt:.2f}x"

    if p := pair("counter", 100_000):
        cw, mt = p
        goal("100k counters: RSS <= 2x mtail", cw.rss <= 2 * mt.rss, versus(cw.rss, mt.rss, "MiB"))
        idle = f"{cw.idle:.1f}% (mtail {mt.idle:.1f}%)"
        goal("100k counters: idle CPU < 2% of a core", cw.idle < 2, idle)
        scrape = versus(cw.scrape, mt.scrape, "s")
        goal("100k counters: scrape <= 1.5x mtail", cw.scrape <= 1.5 * mt.scrape, scrape)
    if p := pair("histogram", 100_000):
        cw, mt = p
        rss = versus(cw.rss, mt.rss, "MiB")
        goal("100k histogram sets: RSS <= 2x mtail", cw.rss <= 2 * mt.rss, rss)
        scrape = versus(cw.scrape, mt.scrape, "s")
        goal("100k histogram sets: scrape <= 1.5x mtail", cw.scrape <= 1.5 * mt.scrape, scrape)
    if rate:
        ratio = rate["chatwatch"] / max(rate["mtail"], 1e-9)
        cores = f"{rate['chatwatch_core']:.1f}% vs mtail {rate['mtail_core']:.1f}% of a core"
        goal("CPU at 2,000 lines/s <= 0.5x mtail", ratio <= 0.5, f"{cores}, {ratio:.2f}x")
    for problem in problems:
        print("MISMATCH:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
