"""The Dockerfile says what issue 6 asks: multi-stage wheel build, slim base, numeric
non-root user, one writable state folder, port 9317, `chatwatch run -c ...` by default."""

from __future__ import annotations

import json
from pathlib import Path

from agent.config import Config
from agent.server.config import ServerConfig
from tests.deploy_support import REPO, Stage, dockerfile_stages, dockerignored

CONFIG_PATH = "/etc/chatwatch/chatwatch.yaml"


def _final() -> Stage:
    return dockerfile_stages()[-1]


def _args(stage: Stage, word: str) -> list[str]:
    return [args for w, args in stage.instructions if w == word]


def test_two_stages_on_a_slim_python_311() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 2
    bases = [stage.instructions[0][1].split()[0] for stage in stages]
    assert bases == ["python:3.11-slim", "python:3.11-slim"]


def test_build_stage_makes_wheels_and_runtime_installs_only_from_them() -> None:
    build, final = dockerfile_stages()
    assert any("pip wheel" in run for run in _args(build, "RUN"))
    installs = [run for run in _args(final, "RUN") if "pip install" in run]
    assert len(installs) == 1
    assert "--no-index" in installs[0]
    assert f"from={build.name}" in installs[0]
    assert not any(w == "COPY" and "agent" in a.split() for w, a in final.instructions)


def test_runs_as_a_numeric_non_root_user() -> None:
    (user,) = _args(_final(), "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000
    assert not gid or gid.isdigit()
    # The state folder belongs to that user; nothing else needs to be writable.
    assert any(f"chown {user} /var/lib/chatwatch" in run for run in _args(_final(), "RUN"))


def test_state_folder_is_the_configs_default_and_a_volume() -> None:
    default = Config.model_fields["state_dir"].default
    assert default == "/var/lib/chatwatch"
    (volume,) = _args(_final(), "VOLUME")
    assert json.loads(volume) == [default]


def test_entrypoint_command_and_port() -> None:
    final = _final()
    assert [json.loads(a) for a in _args(final, "ENTRYPOINT")] == [["chatwatch"]]
    assert [json.loads(a) for a in _args(final, "CMD")] == [["run", "-c", CONFIG_PATH]]
    port = ServerConfig().port
    assert _args(final, "EXPOSE") == [str(port)] == ["9317"]


def test_no_healthcheck_kubernetes_probes_do_that() -> None:
    assert not _args(_final(), "HEALTHCHECK")


def test_everything_copied_is_in_the_build_context() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for stage in dockerfile_stages():
        for word, args in stage.instructions:
            if word != "COPY" or args.startswith("--from"):
                continue
            *sources, _ = args.split()
            for source in sources:
                matches = sorted(REPO.glob(source))
                assert matches, f"COPY {source}: nothing in the repository matches"
                for path in matches:
                    rel = str(path.relative_to(REPO))
                    assert not dockerignored(rel, patterns), f".dockerignore drops {rel}"


def test_dockerignore_keeps_tests_caches_and_the_venv_out() -> None:
    patterns = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    for rel in (
        ".venv/bin/python",
        "tests/test_cli.py",
        "agent/__pycache__/cli.cpython-311.pyc",
        ".git/HEAD",
    ):
        assert dockerignored(rel, patterns), rel
    for rel in ("agent/cli.py", "pyproject.toml", "rules/chatbot.yml"):
        assert not dockerignored(rel, patterns), rel


def test_the_image_bakes_in_the_rule_pack_the_node_logs_example_uses() -> None:
    copies = [a for a in _args(_final(), "COPY") if a.startswith("rules/")]
    assert copies == ["rules/*.yml /usr/share/chatwatch/rules/"]
    node_config = (REPO / "examples/kubernetes/node-logs/configmap.yaml").read_text()
    assert "/usr/share/chatwatch/rules/*.yml" in node_config
    assert Path(REPO / "rules" / "chatbot.yml").is_file()
