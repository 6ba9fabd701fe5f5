"""`chatwatch run` as a process: SIGTERM mid-stream, restart from checkpoint, reload."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.realservers import Chatwatch, free_port, wait_until

pytestmark = pytest.mark.slow

CONFIG = """
sources:
  - name: chatbot
    paths: ["bot.log"]
    start_at: beginning
state_dir: state
checkpoint: {{interval: 1s}}
server: {{listen: "127.0.0.1:{port}", enable_admin_api: true}}  # POST /-/reload
metrics:
  - name: lines_total
    type: counter
    help: Lines seen.
{extra}
"""


WRITER = """
import sys, time
path, total = sys.argv[1], int(sys.argv[2])
with open(path, "ab", buffering=0) as f:
    for start in range(0, total, 500):
        f.write(b"".join(b'{"event": "x", "i": %d}\\n' % i for i in range(start, start + 500)))
        time.sleep(0.02)
"""


def metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def write_config(path: Path, port: int, extra: str = "") -> None:
    path.write_text(CONFIG.format(port=port, extra=extra))


def test_sigterm_mid_stream_exits_0_and_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "cw.yaml"
    write_config(cfg, port)
    log = tmp_path / "bot.log"
    log.write_bytes(b"")
    total = 100_000
    # A real writer process appends steadily (about 4 s) while the agent is stopped.
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(log), str(total)], stderr=subprocess.PIPE
    )
    cw = Chatwatch(cfg, port, tmp_path).start()
    wait_until(lambda: (metric(cw.metrics(), "lines_total") or 0) > 1000, what="first lines")
    assert writer.poll() is None, "the writer must still be writing when SIGTERM arrives"
    started = time.monotonic()
    code = cw.stop(signal.SIGTERM)
    assert code == 0, cw.logs()
    assert time.monotonic() - started < 5.0
    assert writer.wait(60) == 0

    checkpoints = json.loads((tmp_path / "state" / "checkpoints.json").read_text())
    offsets = [entry["offset"] for entry in _entries(checkpoints)]
    assert len(offsets) == 1
    offset = offsets[0]
    data = log.read_bytes()
    assert 0 < offset <= len(data)
    assert data[offset - 1 : offset] == b"\n", "checkpoint must sit just past a complete line"
    handed_before = data[:offset].count(b"\n")
    # One instant: the count saved with the offset is the lines before it.
    saved = checkpoints["metrics"]["lines_total"]
    assert (saved["series"], saved["values"]) == ([[]], [handed_before])
    assert 0 < handed_before < total

    cw2 = Chatwatch(cfg, port, tmp_path).start()
    try:
        # The counter goes on from the saved count (no reset) to every line, once.
        wait_until(
            lambda: metric(cw2.metrics(), "lines_total") == total,
            timeout=60,
            what=f"all {total} lines counted after restart",
        )
        # Everything after the checkpoint read once, to the end: nothing left to hand on.
        wait_until(
            lambda: (
                cw2.sample("chatwatch_bytes_read_total", source="chatbot") == len(data) - offset
            ),
            what="the rest of the file read",
        )
        assert metric(cw2.metrics(), "lines_total") == total
    finally:
        assert cw2.stop() == 0


def _entries(node: object) -> list[dict[str, int]]:
    """Every checkpoint entry (a mapping with an `offset`) anywhere in the file."""
    if isinstance(node, dict):
        if "offset" in node:
            return [node]
        return [e for v in node.values() for e in _entries(v)]
    if isinstance(node, list):
        return [e for v in node for e in _entries(v)]
    return []


def test_bad_reload_keeps_running_config_and_good_reload_applies(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "cw.yaml"
    write_config(cfg, port)
    log = tmp_path / "bot.log"
    log.write_bytes(b'{"event": "a"}\n')
    cw = Chatwatch(cfg, port, tmp_path).start()
    try:
        wait_until(lambda: metric(cw.metrics(), "lines_total") == 1, what="first line")

        cfg.write_text(cfg.read_text() + "\nnonsense_key: 1\n")
        assert cw.proc is not None
        cw.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: metric(cw.metrics(), "chatwatch_config_last_reload_successful") == 0,
            what="failed reload to be reported",
        )
        assert "nonsense_key: unknown key" in cw.logs()
        with log.open("ab") as f:
            f.write(b'{"event": "b"}\n')
        wait_until(lambda: metric(cw.metrics(), "lines_total") == 2, what="still counting")

        extra = (
            "  - name: b_events_total\n    type: counter\n    help: b events.\n"
            "    match: {event: b}\n"
        )
        write_config(cfg, port, extra)
        r = httpx.post(f"{cw.url}/-/reload", timeout=10)
        assert r.status_code == 200, r.text
        assert metric(cw.metrics(), "chatwatch_config_last_reload_successful") == 1
        with log.open("ab") as f:
            f.write(b'{"event": "b"}\n')
        wait_until(lambda: metric(cw.metrics(), "b_events_total") == 1, what="new metric")
        assert metric(cw.metrics(), "lines_total") == 3
    finally:
        assert cw.stop() == 0


def test_counters_show_at_zero_before_the_first_event_and_count_bad_lines(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    write_config(config, port)
    (tmp_path / "bot.log").touch()
    cw = Chatwatch(config, port, tmp_path).start()
    try:
        text = wait_until(cw.metrics, what="first scrape")
        # A dashboard and rate() need the series before anything happened.
        assert metric(text, "lines_total") == 0
        assert 'chatwatch_decode_errors_total{reason="not_json",source="chatbot"} 0.0' in text
        assert 'chatwatch_lines_read_total{source="chatbot"} 0.0' in text
        with (tmp_path / "bot.log").open("a") as f:
            f.write('not json\n{"event": "x"}\n')
        wait_until(lambda: metric(cw.metrics(), "lines_total") == 1, what="the good line")
        text = cw.metrics()
        assert 'chatwatch_decode_errors_total{reason="not_json",source="chatbot"} 1.0' in text
        assert 'chatwatch_lines_read_total{source="chatbot"} 2.0' in text
    finally:
        assert cw.stop() == 0


def test_a_port_in_use_is_one_clear_error_and_exit_1(tmp_path: Path) -> None:
    """`chatwatch run` on a taken port says which key to change, with no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "cw.yaml"
        config.write_text(
            f"sources: [{{name: app, paths: ['{tmp_path}/*.log']}}]\n"
            f"state_dir: {tmp_path}/state\n"
            f"server: {{listen: '127.0.0.1:{port}'}}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "agent", "--log-format", "text", "run", "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "server.listen" in result.stderr
    assert "Traceback" not in result.stderr
