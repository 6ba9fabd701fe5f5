"""Fault: the agent is killed with SIGKILL (an OOM kill, a node lost) while a writer
writes steadily, and restarted; several times.

Every line is counted exactly once: after each `kill -9` the agent restores its last
checkpoint (offsets and metric values of one instant) and reads on from those offsets,
so the lines it had counted after that checkpoint are counted again, on top of values
that do not hold them. Prometheus sees no reset: no scrape of /metrics ever shows a
counter lower than an earlier scrape did, across every restart.

"Never twice" is checked three ways at the end: the line count is N, the sum of the line
numbers is 0 + 1 + ... + N-1, and a histogram of the line numbers has exactly N/10 lines
in each tenth. A line counted twice and another missed would have to be the same line
number to hide from all three.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.realservers import Chatwatch, free_port, wait_until
from tests.writer import WRITER

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

N = 30_000
KILLS = 3
TENTHS = [N // 10 * k - 0.5 for k in range(1, 10)]

CONFIG = """
sources: [{{name: chatbot, paths: ["{log}"], format: json, start_at: beginning}}]
state_dir: {state}
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: lines_total, type: counter, help: Lines counted.}}
  - {{name: line_numbers_total, type: counter, value: n, help: Sum of the line numbers.}}
  - {{name: line_number, type: histogram, value: n, buckets: {buckets}}}
"""


class Scrapes:
    """Every value of the counters /metrics showed, in order, across restarts."""

    def __init__(self) -> None:
        self.seen: list[dict[str, float]] = []

    def scrape(self, cw: Chatwatch) -> dict[str, float] | None:
        """One scrape; None while the agent answers 503 (counting its backlog again)."""
        r = httpx.get(f"{cw.url}/metrics", timeout=10)
        if r.status_code == 503:
            return None
        r.raise_for_status()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(r.text):
            for s in family.samples:
                if s.name in ("lines_total", "line_numbers_total"):
                    values[s.name] = s.value
                elif s.name == "line_number_bucket":
                    values[f"le={s.labels['le']}"] = s.value
        self.seen.append(values)
        return values

    def lines(self, cw: Chatwatch) -> float:
        values = self.scrape(cw)
        return -1.0 if values is None else values["lines_total"]

    def decreases(self) -> list[tuple[str, float, float]]:
        """(series, earlier value, later lower value) for every step back."""
        out = []
        for before, after in zip(self.seen, self.seen[1:], strict=False):
            out += [(k, before[k], after[k]) for k in after if k in before and after[k] < before[k]]
        return out


def saved_count(state: Path) -> float:
    """The line count in the checkpoint on disk (what a restart goes on from)."""
    doc = orjson.loads((state / "checkpoints.json").read_bytes())
    count: float = doc["metrics"]["lines_total"]["values"][0]
    return count


def test_kill9_mid_stream_counts_every_line_once_and_never_resets(tmp_path: Path) -> None:
    log = tmp_path / "chatbot.log"
    state = tmp_path / "state"
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(CONFIG.format(log=log, state=state, port=port, buckets=TENTHS))
    log.touch()

    # A real writer appends N numbered lines at a steady pace (~18 s), in 4 KiB writes
    # that split lines, as a busy logger does.
    writer = subprocess.Popen(
        [sys.executable, str(WRITER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write(f"open w {log}\npace w 0 {N} 4096 0.03\n")
    writer.stdin.flush()
    assert writer.stdout.readline().strip() == "ok"

    scrapes = Scrapes()
    recounted = []
    try:
        for _ in range(KILLS):
            cw = Chatwatch(config, port, tmp_path).start()
            start = max(0.0, scrapes.lines(cw))
            wait_until(lambda cw=cw, start=start: scrapes.lines(cw) > start + 1500, timeout=30)
            assert cw.proc is not None
            last = scrapes.seen[-1]["lines_total"]
            cw.stop(signal.SIGKILL)
            assert writer.poll() is None, "the writer must still be writing at the kill"
            recounted.append(last - saved_count(state))
        cw = Chatwatch(config, port, tmp_path).start()
        try:
            assert writer.stdout.readline().strip() == "ok"  # all N lines written
            wait_until(lambda: scrapes.lines(cw) == N, timeout=60, what=f"{N} lines counted")
            final = scrapes.seen[-1]
            logs = cw.logs()
        finally:
            assert cw.stop() == 0
    finally:
        writer.kill()
        writer.wait()

    assert log.read_bytes().count(b"\n") == N
    assert final["lines_total"] == N
    assert final["line_numbers_total"] == N * (N - 1) / 2
    assert [final[f"le={le}"] for le in TENTHS] == [N // 10 * k for k in range(1, 10)]
    assert scrapes.decreases() == []
    assert logs.count("checkpoint restored") == KILLS
    # The kills hit between checkpoints: lines counted before a kill were counted again
    # after it, on top of the checkpoint's values (else exactly once was never at stake).
    assert any(n > 0 for n in recounted), recounted
    print(
        f"{N} lines written, {int(final['lines_total'])} counted, 0 twice "
        f"({KILLS} kill -9; lines counted again after each: {[int(n) for n in recounted]}; "
        f"{len(scrapes.seen)} scrapes, none lower than the one before)"
    )


def test_scrapes_after_kill9_wait_until_the_lines_since_the_checkpoint_are_counted_again(
    tmp_path: Path,
) -> None:
    """The restored values are older than what /metrics showed before the kill: a scrape
    in between would see the counter go back (a reset, to Prometheus). Here the only
    checkpoint is the one written at start, so the whole file is counted again."""
    log = tmp_path / "chatbot.log"
    state = tmp_path / "state"
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    text = CONFIG.format(log=log, state=state, port=port, buckets=TENTHS)
    config.write_text(text.replace("interval: 1s", "interval: 1h"))
    log.touch()
    total = 300_000
    scrapes = Scrapes()
    cw = Chatwatch(config, port, tmp_path).start()
    wait_until(lambda: (state / "checkpoints.json").exists(), what="the checkpoint at start")
    with log.open("ab") as f:
        pad = b"x" * 40  # 18 MB: counted again over many turns of the event loop
        f.write(b"".join(b'{"n": %d, "pad": "%s"}\n' % (n, pad) for n in range(total)))
    wait_until(lambda: scrapes.lines(cw) == total, what="every line counted")
    cw.stop(signal.SIGKILL)
    assert saved_count(state) == 0

    cw = Chatwatch(config, port, tmp_path).start(wait_ready=False)
    try:
        wait_until(lambda: scrapes.lines(cw) == total, interval=0.01, what="counted again")
    finally:
        assert cw.stop() == 0
    assert scrapes.decreases() == []
    assert scrapes.seen[-1]["line_numbers_total"] == total * (total - 1) / 2
