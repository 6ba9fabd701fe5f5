"""The container image's install steps, without a Docker engine (none runs here or in CI).

Repeats what the Dockerfile does: a build context holding only what its build stage
COPYs (less what .dockerignore leaves out), `pip wheel` of it, the wheel installed into
a fresh environment, the rule pack copied where the image keeps it. Then, as the image
runs it, as an unprivileged numeric user (65534) with a read-only config folder and one
writable state folder (the Kubernetes example's mounts, mirrored under a temporary root):
`chatwatch --version`, `chatwatch check`, and `chatwatch run` until SIGTERM.

Two shortcuts keep it fast and offline beyond PyPI: only chatwatch itself is built as a
wheel (`--no-deps`; the image builds every dependency the same way), and the fresh
environment finds the dependencies in the test's own virtualenv through a `.pth` file,
after its own site-packages, so `agent` is imported from the installed wheel.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import K8S, REPO, dockerfile_stages, dockerignored, yaml_docs
from tests.realservers import free_port

pytestmark = pytest.mark.slow

NOBODY = 65534
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def build_context(dest: Path) -> None:
    """Copy what the build stage's COPY lines name, as `docker build` would send it."""
    patterns = _ignore_patterns()
    build = dockerfile_stages()[0]
    for word, args in build.instructions:
        if word != "COPY":
            continue
        *sources, _target = args.split()
        for source in sources:
            for path in sorted(REPO.glob(source)):
                files = (
                    [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
                )
                for f in files:
                    rel = str(f.relative_to(REPO))
                    if dockerignored(rel, patterns):
                        continue
                    (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, dest / rel)


def _as_nobody() -> None:
    os.setgroups([NOBODY])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _env() -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HOME": "/nonexistent",
        "LANG": "C.UTF-8",
    }


def _usable_by_nobody(*argv: str) -> bool:
    try:
        result = subprocess.run(
            list(argv),
            preexec_fn=_as_nobody,
            env=_env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0


def _interpreter() -> str:
    """A Python 3.11 that uid 65534 may run (a pyenv build under /root is out of its reach)."""
    candidates = [
        getattr(sys, "_base_executable", sys.executable),
        "/usr/local/bin/python3.11",
        "/usr/bin/python3.11",
    ]
    for candidate in candidates:
        if Path(candidate).exists() and _usable_by_nobody(
            candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 11)"
        ):
            return candidate
    pytest.skip("no Python 3.11 interpreter that an unprivileged user can run")


def _install(wheel: Path, venv: Path) -> None:
    """Install the wheel into a fresh venv; dependencies from ours when uid 65534 can read
    them (fast, offline), else from the package index as the image does."""
    subprocess.run(
        [_interpreter(), "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    python = str(venv / "bin" / "python")
    ours = sysconfig.get_paths()["purelib"]
    shared = _usable_by_nobody(python, "-c", f"import os; os.listdir({ours!r})")
    if shared:
        site = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        (Path(site) / "_test_dependencies.pth").write_text(ours + "\n")
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "-q"]
    pip += ["--no-deps", "--no-index"] if shared else []
    subprocess.run([*pip, str(wheel)], check=True, timeout=300)


@dataclass
class Image:
    """A fresh environment with the wheel installed, and a root folder mirroring the pod."""

    root: Path
    venv: Path

    @property
    def chatwatch(self) -> Path:
        return self.venv / "bin" / "chatwatch"

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.chatwatch), *args],
            cwd=self.path("/var/lib/chatwatch"),
            env=_env(),
            preexec_fn=_as_nobody,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip("switching to an unprivileged user needs root (CI runs the tests as root)")
    top = Path(tempfile.mkdtemp(prefix="chatwatch-image-"))
    top.chmod(0o755)  # mkdtemp makes it 0700: uid 65534 must reach the environment
    try:
        context, wheels, venv, root = top / "context", top / "wheels", top / "venv", top / "root"
        context.mkdir()
        build_context(context)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--no-deps",
                "--wheel-dir",
                str(wheels),
                str(context),
            ],
            check=True,
            timeout=300,
        )
        (wheel,) = wheels.glob("chatwatch-*.whl")
        _install(wheel, venv)
        img = Image(root=root, venv=venv)
        # The runtime stage: the rule pack, the state folder owned by the image's user.
        rules = img.path("/usr/share/chatwatch/rules")
        rules.mkdir(parents=True)
        for f in sorted((REPO / "rules").glob("*.yml")):
            shutil.copy2(f, rules / f.name)
        state = img.path("/var/lib/chatwatch")
        state.mkdir(parents=True)
        os.chown(state, NOBODY, NOBODY)
        state.chmod(0o700)
        for p in [top, *sorted(p for p in top.rglob("*") if p.is_dir() and p != state)]:
            p.chmod(p.stat().st_mode | 0o055)
        yield img
    finally:
        shutil.rmtree(top, ignore_errors=True)


def _configmap_config() -> str:
    (cm,) = [d for d in yaml_docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap"]
    text: str = cm["data"]["chatwatch.yaml"]
    return text


def mount_pod_files(img: Image, port: int) -> Path:
    """The example pod's mounts under img.root: config (read-only), rules, secrets, logs."""
    config_dir = img.path("/etc/chatwatch")
    if config_dir.exists():
        config_dir.chmod(0o755)
        shutil.rmtree(config_dir)
    (config_dir / "rules").mkdir(parents=True)
    text = _configmap_config()
    for mount in ("/var/log/chatbot/", "/var/run/secrets/chatwatch/", "/var/lib/chatwatch"):
        text = text.replace(mount, str(img.path(mount)) + ("/" if mount.endswith("/") else ""))
    text = text.replace('"0.0.0.0:9317"', f'"127.0.0.1:{port}"')
    config = config_dir / "chatwatch.yaml"
    config.write_text(text)
    shutil.copy2(REPO / "rules" / "chatbot.yml", config_dir / "rules" / "chatbot.yml")
    secrets = img.path("/var/run/secrets/chatwatch")
    secrets.mkdir(parents=True, exist_ok=True)
    for name, value in (
        ("slack-url", "https://hooks.slack.example/T0/B0/secret"),
        ("smtp-password", "pw"),
    ):
        (secrets / name).write_text(value + "\n")
        os.chown(secrets / name, 0, NOBODY)
        (secrets / name).chmod(0o440)  # as the Secret's defaultMode with fsGroup
    logs = img.path("/var/log/chatbot")
    logs.mkdir(parents=True, exist_ok=True)
    logs.chmod(0o755)
    # Read-only: root-owned files 0444 in folders 0555, as a ConfigMap volume mounts them.
    for p in sorted(config_dir.rglob("*"), reverse=True):
        p.chmod(0o555 if p.is_dir() else 0o444)
    config_dir.chmod(0o555)
    return config


def test_build_context_holds_what_the_package_needs(tmp_path: Path) -> None:
    build_context(tmp_path)
    assert (tmp_path / "pyproject.toml").is_file()
    assert (tmp_path / "agent" / "__init__.py").is_file()
    assert (tmp_path / "agent" / "cli.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))
    assert not (tmp_path / "tests").exists()


def test_installed_wheel_is_what_runs(image: Image) -> None:
    result = subprocess.run(
        [str(image.venv / "bin" / "python"), "-c", "import agent; print(agent.__file__)"],
        cwd="/",
        env=_env(),
        preexec_fn=_as_nobody,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().startswith(str(image.venv)), result.stdout
    assert image.chatwatch.is_file()


def test_version_as_unprivileged_user(image: Image) -> None:
    result = image.run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"chatwatch {VERSION}"


def test_check_accepts_the_kubernetes_config_from_a_read_only_folder(image: Image) -> None:
    config = mount_pod_files(image, free_port())
    result = image.run("check", "-c", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o555


def test_check_as_unprivileged_user_reports_an_unreadable_secret(image: Image) -> None:
    config = mount_pod_files(image, free_port())
    secret = image.path("/var/run/secrets/chatwatch/slack-url")
    secret.chmod(0o400)  # owned by root: uid 65534 can no longer read it
    try:
        result = image.run("check", "-c", str(config))
    finally:
        secret.chmod(0o440)
    assert result.returncode == 1
    assert "api_url_file" in result.stderr
    assert "hooks.slack.example" not in result.stdout + result.stderr


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except OSError:
        return 0, ""


def _wait(what: str, cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_as_unprivileged_user_writes_only_its_state_folder(image: Image) -> None:
    port = free_port()
    config = mount_pod_files(image, port)
    state = image.path("/var/lib/chatwatch")
    log = image.path("/var/log/chatbot") / "chatbot.log"
    log.write_text(
        '{"ts": "2026-11-23T09:00:00Z", "level": "info", "event": "http_request", '
        '"route": "/api/chat", "status_code": 200, "duration_ms": 120}\n'
    )
    log.chmod(0o644)
    before = {
        p: p.stat().st_mtime_ns
        for p in image.root.rglob("*")
        if p != state and state not in p.parents
    }
    proc = subprocess.Popen(
        [str(image.chatwatch), "run", "-c", str(config)],
        cwd=state,
        env=_env(),
        preexec_fn=_as_nobody,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        try:
            _wait("/-/ready", lambda: _get(base + "/-/ready")[0] == 200 or proc.poll() is not None)
        except AssertionError:
            pytest.fail("chatwatch did not become ready")
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"chatwatch exited with {proc.returncode}: {err[-2000:]}")
        assert _get(base + "/-/healthy")[0] == 200
        _wait(
            "the log line on /metrics",
            lambda: (
                'chatbot_http_requests_total{route="/api/chat",status_code="200"} 1.0'
                in _get(base + "/metrics")[1]
            ),
        )
        # the web page and its vendored chart library come from the installed wheel
        status, page = _get(base + "/")
        assert status == 200 and "<h1>Overview</h1>" in page
        status, chart = _get(base + "/static/uPlot.iife.min.js")
        assert status == 200 and chart.startswith("/*! https://github.com/leeoniya/uPlot")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        _, err = proc.communicate()
        assert code == 0, err[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    written = sorted(p.name for p in state.rglob("*") if p.is_file())
    assert "checkpoints.json" in written
    assert all(p.stat().st_uid == NOBODY for p in state.rglob("*"))
    after = {
        p: p.stat().st_mtime_ns
        for p in image.root.rglob("*")
        if p != state and state not in p.parents
    }
    assert after == before, "chatwatch wrote outside its state folder"
    docs = yaml.safe_load(config.read_text())
    assert docs["state_dir"] == str(state)
