"""Fault: the checkpoint is corrupt, truncated, or missing (a disk error, a volume copied
half-way, a crash between the two renames of a write).

The agent logs it, sets a corrupt file aside and starts from the previous checkpoint
(`checkpoints.json.1`, kept one write back): an older instant, but a whole one, so every
line after its offsets is counted again on top of its values, and the count comes out
exact. With no usable checkpoint at all it starts afresh; it never refuses to start.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.realservers import Chatwatch, free_port, wait_until

pytestmark = pytest.mark.slow

CONFIG = """
sources: [{{name: chatbot, paths: ["{log}"], format: json, start_at: end}}]
state_dir: {state}
checkpoint: {{interval: 1h}}  # written at start and at shutdown only
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: lines_total, type: counter, help: Lines counted.}}
"""


class Agent:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.log = tmp_path / "chatbot.log"
        self.log.touch()
        self.state = tmp_path / "state"
        self.checkpoint = self.state / "checkpoints.json"
        self.previous = self.state / "checkpoints.json.1"
        self.port = free_port()
        self.config = tmp_path / "chatwatch.yaml"
        self.config.write_text(CONFIG.format(log=self.log, state=self.state, port=self.port))
        self.written = 0

    def start(self) -> Chatwatch:
        return Chatwatch(self.config, self.port, self.tmp).start()

    def write(self, count: int) -> None:
        with self.log.open("ab") as f:
            f.writelines(b'{"n": %d}\n' % n for n in range(self.written, self.written + count))
        self.written += count


def saved_count(path: Path) -> float:
    count: float = orjson.loads(path.read_bytes())["metrics"]["lines_total"]["values"][0]
    return count


def two_generations(agent: Agent) -> None:
    """Leave checkpoints.json at 1500 lines and checkpoints.json.1 at 1000."""
    cw = agent.start()
    try:
        agent.write(1000)
        wait_until(lambda: cw.sample("lines_total") == 1000)
    finally:
        assert cw.stop() == 0
    cw = agent.start()  # writes the checkpoint at start: the one before is now at 1000
    try:
        wait_until(lambda: agent.previous.exists())
        agent.write(500)
        wait_until(lambda: cw.sample("lines_total") == 1500)
    finally:
        assert cw.stop() == 0
    assert saved_count(agent.checkpoint) == 1500
    assert saved_count(agent.previous) == 1000


def truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def garbage(path: Path) -> None:
    path.write_bytes(b"\x00\x17\xfe not a checkpoint \xff" * 10)


def missing(path: Path) -> None:
    path.unlink()  # as a crash between "checkpoint -> .1" and "new -> checkpoint" leaves it


@pytest.mark.parametrize("damage", [truncated, garbage, missing])
def test_damaged_checkpoint_falls_back_to_the_previous_one_and_counts_exactly(
    tmp_path: Path, damage: object
) -> None:
    agent = Agent(tmp_path)
    two_generations(agent)
    assert callable(damage)
    damage(agent.checkpoint)

    cw = agent.start()
    try:
        # The previous checkpoint's 1000, and the 500 lines after its offsets read again.
        # (A fresh start would begin at the end of the file: 0.)
        wait_until(lambda: cw.sample("lines_total") == 1500, what="1500 lines")
        agent.write(10)
        wait_until(lambda: cw.sample("lines_total") == 1510, what="1510 lines")
    finally:
        assert cw.stop() == 0
    logs = cw.logs()
    if damage is missing:
        assert logs.count("using the previous checkpoint") == 1
    else:
        assert logs.count("checkpoint is corrupt or truncated") == 1
        assert (agent.state / "checkpoints.json.corrupt").exists()
    assert "Traceback" not in logs
    assert saved_count(agent.checkpoint) == 1510


def test_no_usable_checkpoint_starts_afresh_without_crashing(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    two_generations(agent)
    garbage(agent.checkpoint)
    truncated(agent.previous)

    cw = agent.start()
    try:
        assert cw.sample("lines_total") == 0  # nothing restored; `start_at: end` applies
        agent.write(10)
        wait_until(lambda: cw.sample("lines_total") == 10)
    finally:
        assert cw.stop() == 0
    logs = cw.logs()
    assert logs.count("checkpoint is corrupt or truncated") == 2
    assert "no usable checkpoint; starting afresh" in logs
    assert "Traceback" not in logs
