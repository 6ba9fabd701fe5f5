"""Config loading: every problem is reported with file, key path and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import ConfigError, load, loads
from agent.support.duration import format_duration, parse_duration


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(text, "cw.yaml", env or {})
    return info.value.problems


def test_minimal_config_gets_documented_defaults() -> None:
    cfg = loads("sources: [{name: bot, paths: ['/var/log/bot/*.log']}]", "cw.yaml", {})
    src = cfg.sources[0]
    assert (src.format, src.start_at, src.max_line_bytes) == ("json", "end", 1_048_576)
    assert cfg.evaluation_interval == 1.0
    assert cfg.checkpoint.interval == 5.0
    assert cfg.server.listen == "0.0.0.0:9317"
    assert cfg.checkpoint_path == Path("/var/lib/chatwatch/checkpoints.json")


def test_every_problem_is_reported_with_its_key_path() -> None:
    problems = problems_of(
        """
sources:
  - name: a
    paths: [x.log]
    format: jsn
  - {name: b, stdin: true, bogus: 1}
checkpoint: {interval: 5x}
metrics:
  - {name: 'bad name', type: counter}
"""
    )
    assert "cw.yaml: sources[0].format: expected one of" in problems[0]
    assert "'json'" in problems[0]
    assert problems[1] == (
        "cw.yaml: sources[1].bogus: unknown key (check its spelling and where it is nested)"
    )
    assert problems[2].startswith("cw.yaml: checkpoint.interval: expected a duration")
    assert problems[3] == "cw.yaml: metrics[0].name: not a valid Prometheus metric name: 'bad name'"
    assert len(problems) == 4


def test_missing_sources_and_wrong_types() -> None:
    assert problems_of("server: {listen: nope}") == [
        "cw.yaml: sources: required key is missing",
        "cw.yaml: server.listen: expected host:port such as 0.0.0.0:9317, got 'nope'",
    ]
    (problem,) = problems_of("sources: [{name: a, paths: x.log}]")
    assert problem.startswith("cw.yaml: sources[0].paths: ")


def test_source_needs_paths_or_stdin_and_regex_needs_named_groups() -> None:
    (p1,) = problems_of("sources: [{name: a}]")
    assert "sources[0]" in p1 and "`paths`" in p1
    (p2,) = problems_of("sources: [{name: a, paths: [x], format: regex, regex: '(\\d+)'}]")
    assert "sources[0].regex" in p2 and "named group" in p2
    (p3,) = problems_of("sources: [{name: a, paths: [x]}, {name: a, stdin: true}]")
    assert "'a' is used by another source" in p3


def test_yaml_syntax_error_names_line() -> None:
    (problem,) = problems_of("sources:\n  - name: [unclosed\n")
    assert problem.startswith("cw.yaml: line 3, column 1: not valid YAML")


def test_a_key_written_twice_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    """As in rule files (and Prometheus): the second `paths:` must not silently win."""
    config = tmp_path / "cw.yaml"
    config.write_text("sources:\n  - name: app\n    paths: [a.log]\n    paths: [b.log]\n")
    with pytest.raises(ConfigError) as info:
        load(config)
    (problem,) = info.value.problems
    assert problem.startswith(f"{config}: line 4, column 5: not valid YAML")
    assert "'paths' already defined at line 3" in problem


def test_format_duration_spells_weeks_and_years_as_prometheus_does() -> None:
    """model.Duration.String: years and weeks only when they divide the duration."""
    assert format_duration(7 * 86400) == "1w"
    assert format_duration(100 * 86400) == "100d"
    assert format_duration(365 * 86400 + 90) == "365d1m30s"
    assert format_duration(2 * 365 * 86400) == "2y"


def test_env_expansion_on_values_only() -> None:
    cfg = loads(
        "sources: [{name: bot, paths: ['${LOGDIR}/*.log', '${NOPE:-/tmp}/x', 'a$$b']}]",
        "cw.yaml",
        {"LOGDIR": "/var/log/bot"},
    )
    assert cfg.sources[0].paths == ["/var/log/bot/*.log", "/tmp/x", "a$b"]
    # A value that looks like YAML stays a plain string.
    cfg = loads("sources: [{name: bot, paths: ['${V}']}]", "cw.yaml", {"V": "[a, b]"})
    assert cfg.sources[0].paths == ["[a, b]"]


def test_unset_env_var_is_an_error_naming_the_key() -> None:
    assert problems_of("sources: [{name: bot, paths: ['${LOGDIR}/*.log']}]") == [
        "cw.yaml: sources[0].paths[0]: environment variable LOGDIR is not set"
    ]


def test_secret_from_file_is_read_and_never_printed(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    cfg = loads(
        f"""
sources: [{{name: a, stdin: true}}]
server: {{basic_auth: {{username: prom, password_file: {secret}}}}}
""",
        "cw.yaml",
        {},
    )
    assert cfg.server.basic_auth is not None
    assert cfg.server.basic_auth.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(cfg) and "hunter2" not in str(cfg.model_dump())


def test_missing_secret_file_is_a_clear_error(tmp_path: Path) -> None:
    (problem,) = problems_of(
        "sources: [{name: a, stdin: true}]\n"
        f"server: {{basic_auth: {{username: u, password_file: {tmp_path}/missing}}}}"
    )
    assert problem.startswith("cw.yaml: server.basic_auth: ")
    assert "password_file: cannot read" in problem and "No such file" in problem


def test_load_reports_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.yaml")
    assert info.value.problems == [f"{tmp_path}/nope.yaml: cannot read: No such file or directory"]


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    path = tmp_path / "cw.yaml"
    path.write_text("sources: [{name: a, stdin: true}]\nstate_dir: state\n")
    cfg = load(path)
    assert cfg.checkpoint_path == tmp_path / "state" / "checkpoints.json"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("5s", 5), ("15m", 900), ("1h", 3600), ("1d", 86400), ("1h30m", 5400), (3, 3)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["5", "five", "-1s", "1x", "", True, -2])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for text in ["0s", "500ms", "5s", "15m", "1h", "1d", "1h30m"]:
        assert format_duration(parse_duration(text)) == text


def test_relative_secret_file_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "slack-url").write_text("https://hooks.slack.test/T/B/x\n")
    config = tmp_path / "chatwatch.yaml"
    config.write_text("""
sources: [{name: a, stdin: true}]
alerting:
  route: {receiver: slack}
  receivers: [{name: slack, slack_configs: [{api_url_file: secrets/slack-url}]}]
""")
    monkeypatch.chdir("/")  # wherever chatwatch is started from
    cfg = load(str(config))
    [receiver] = cfg.alerting.receivers
    assert receiver.slack_configs[0].api_url.get_secret_value() == "https://hooks.slack.test/T/B/x"
