"""The `chatwatch` command as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent import __version__

CHATWATCH = [sys.executable, "-m", "agent"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CHATWATCH, *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"chatwatch {__version__}"


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text("sources: [{name: bot, paths: [bot.log]}]\n")
    result = run("check", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{cfg}: ok"


def test_check_lists_every_problem_and_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "sources: [{name: bot, paths: [bot.log], format: xml}]\n"
        "evaluation_interval: soon\n"
        "surprise: true\n"
    )
    result = run("check", "-c", str(cfg))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{cfg}: sources[0].format: expected one of")
    assert lines[1].startswith(f"{cfg}: evaluation_interval: expected a duration")
    assert lines[2] == f"{cfg}: surprise: unknown key (check its spelling and where it is nested)"
    assert lines[3] == f"{cfg}: 3 problem(s)"


def test_check_never_prints_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "sources: [{name: bot, paths: [bot.log]}]\n"
        "server: {listen: bad, basic_auth: {username: u, password: s3cr3t-value}}\n"
    )
    result = run("check", "-c", str(cfg))
    assert result.returncode == 1
    assert "s3cr3t-value" not in result.stderr + result.stdout
