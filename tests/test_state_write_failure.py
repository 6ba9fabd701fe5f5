"""A state file that cannot be written (full or read-only volume): the agent keeps
running, counts each failure by file on /metrics, and leaves no temporary files.

The checkpoint is the agent's one state file (offsets, metric values, alerts and
notifications of one instant). Root can write anywhere, so the test makes it a directory:
the temporary file is written and fsynced, and only the rename over the "file" fails,
which is the case that used to leave a `.tmp` behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.realservers import Chatwatch, free_port, wait_until

CONFIG = """
sources: [{{name: app, paths: ["{log}"], start_at: beginning}}]
state_dir: {state}
checkpoint: {{interval: 200ms}}
metrics:
  - {{name: app_lines_total, type: counter}}
rule_files: [rules.yml]
alerting:
  route: {{receiver: log, group_wait: 0s}}
  receivers: [{{name: log, console_configs: [{{}}]}}]
server: {{listen: "127.0.0.1:{port}"}}
"""


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Chatwatch]:
    state = tmp_path / "state"
    (state / "checkpoints.json").mkdir(parents=True)
    (tmp_path / "app.log").write_text('{"msg": "hello"}\n')
    (tmp_path / "rules.yml").write_text(
        "groups: [{name: g, rules: [{alert: Always, expr: vector(1)}]}]\n"
    )
    port = free_port()
    config = tmp_path / "cw.yaml"
    config.write_text(CONFIG.format(log=tmp_path / "app.log", state=state, port=port))
    cw = Chatwatch(config, port, tmp_path).start(wait_ready=False)
    try:
        yield cw
    finally:
        cw.stop()


def test_failed_state_writes_are_counted_by_file_and_leave_no_temporary_file(
    agent: Chatwatch, tmp_path: Path
) -> None:
    failures = "chatwatch_state_write_failures_total"
    wait_until(
        lambda: (agent.sample(failures, file="checkpoints") or 0) >= 2,
        what="checkpoint write failures counted",
    )
    assert agent.sample("app_lines_total") == 1  # the agent kept working
    # alerts and notifications are sections of the checkpoint: no files of their own
    assert agent.sample(failures, file="alerts") is None
    assert agent.sample(failures, file="notifications") is None
    state = tmp_path / "state"
    assert sorted(p.name for p in state.iterdir()) == ["checkpoints.json"]


def test_not_ready_while_the_state_cannot_be_written_and_ready_again_after(
    agent: Chatwatch, tmp_path: Path
) -> None:
    def ready() -> int:
        return httpx.get(f"{agent.url}/-/ready", timeout=2).status_code

    failures = "chatwatch_state_write_failures_total"
    wait_until(lambda: (agent.sample(failures, file="checkpoints") or 0) >= 1, what="a failure")
    wait_until(lambda: ready() == 503, what="/-/ready false")
    (tmp_path / "state" / "checkpoints.json").rmdir()
    wait_until(lambda: ready() == 200, what="/-/ready true once the state is written")
    assert (tmp_path / "state" / "checkpoints.json").is_file()
