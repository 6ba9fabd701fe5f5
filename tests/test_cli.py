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


def test_check_catches_urls_chatwatch_could_not_post_to_without_showing_them(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "sources: [{name: bot, stdin: true}]\n"
        "state_dir: state\n"
        "alerting:\n"
        "  route: {receiver: team}\n"
        "  receivers:\n"
        "    - name: team\n"
        '      slack_configs: [{api_url: "not a url T0KEN"}]\n'
        '      webhook_configs: [{url: "ftp://files.example.org/T0KEN"}]\n'
    )
    result = run("check", "-c", str(cfg))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (
        f"{cfg}: alerting.receivers[0].slack_configs[0].api_url: expected an http:// or "
        "https:// URL, got text that is not a URL (value not shown)" in lines
    )
    assert any(
        "webhook_configs[0].url: expected an http:// or https:// URL, got scheme 'ftp'" in line
        for line in lines
    )
    assert "T0KEN" not in result.stderr + result.stdout


def test_check_warns_about_a_glob_that_matches_nothing_yet(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text(
        "sources: [{name: bot, paths: [logs/*.log]}, {name: there, paths: [here.log]}]\n"
        "state_dir: state\n"
    )
    (tmp_path / "here.log").write_text("")
    result = run("check", "-c", str(cfg))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: {cfg}: sources[0].paths: no file matches {tmp_path}/logs/*.log yet; "
        "it is read once it appears"
    ]
    assert result.stdout.strip() == f"{cfg}: ok"


def test_check_rejects_a_state_dir_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    cfg = tmp_path / "cw.yaml"
    cfg.write_text("sources: [{name: bot, stdin: true}]\nstate_dir: a-file/state\n")
    result = run("check", "-c", str(cfg))
    assert result.returncode == 1
    assert (
        f"{cfg}: state_dir: cannot write checkpoints and alert state to "
        f"{tmp_path}/a-file/state: {tmp_path}/a-file is not a folder" in result.stderr
    )
    assert not (tmp_path / "a-file").is_dir()  # check created nothing


def test_check_names_the_type_it_found_and_suggests_quoting(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.yaml"
    cfg.write_text("sources: [{name: 2024, stdin: true, max_line_bytes: lots}]\nstate_dir: state\n")
    result = run("check", "-c", str(cfg))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert (
        f'{cfg}: sources[0].name: expected a valid string; got a number (quote it, as in "5", '
        "if it is meant as text)" in lines
    )
    assert f"{cfg}: sources[0].max_line_bytes: expected a valid integer; got a string" in lines
