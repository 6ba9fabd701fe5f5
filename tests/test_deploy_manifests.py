"""examples/kubernetes/: every manifest parses, and the pieces fit together.

Volume names used by mounts exist; probes, the Service and the PodMonitor reach the port
chatwatch listens on; the config in the ConfigMap is the file the container runs with,
its source paths lie on the volume the chatbot writes, its `*_file` secrets on the Secret
mount, its state_dir on a writable volume; labels and selectors match. Then the pod's
files are laid out in a temporary folder mirroring the mounts and the config is loaded
and checked there, as `chatwatch check` would in the pod.
"""

from __future__ import annotations

import glob
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from agent.commands.check import check_all
from agent.config import load
from tests.deploy_support import (
    K8S,
    REPO,
    dockerfile_stages,
    find,
    manifests,
    require_tool,
    yaml_docs,
)

DEPLOYMENTS = [K8S / "deployment.yaml", K8S / "node-logs" / "deployment.yaml"]
IMAGE_FILES = {"/usr/share/chatwatch/rules": REPO / "rules"}  # baked in by the Dockerfile


def _deployment(path: Path) -> dict[str, Any]:
    (doc,) = [d for d in yaml_docs(path) if d["kind"] == "Deployment"]
    return doc


def _pod(path: Path) -> dict[str, Any]:
    spec: dict[str, Any] = _deployment(path)["spec"]["template"]["spec"]
    return spec


def _sidecar(pod: dict[str, Any]) -> dict[str, Any]:
    (c,) = [c for c in pod.get("initContainers", []) if c["name"] == "chatwatch"]
    return c


def _chatbot(pod: dict[str, Any]) -> dict[str, Any]:
    (c,) = [c for c in pod["containers"] if c["name"] == "chatbot"]
    return c


def _folder(path: Path) -> Path:
    return path.parent


def _volume(pod: dict[str, Any], name: str) -> dict[str, Any]:
    (v,) = [v for v in pod["volumes"] if v["name"] == name]
    return v


def _config_path(container: dict[str, Any]) -> str:
    argv = container.get("command", []) + container.get("args", [])
    return argv[argv.index("-c") + 1]


def _mount_of(container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volumeMount whose mountPath holds `path` (the deepest one)."""
    hits = [
        m
        for m in container["volumeMounts"]
        if PurePosixPath(path) == PurePosixPath(m["mountPath"])
        or PurePosixPath(m["mountPath"]) in PurePosixPath(path).parents
    ]
    assert hits, f"{path} lies on no volume mounted in {container['name']}"
    return max(hits, key=lambda m: len(m["mountPath"]))


def _configmap_sources(volume: dict[str, Any]) -> list[dict[str, Any]]:
    if "configMap" in volume:
        return [volume["configMap"]]
    return [
        s["configMap"] for s in volume.get("projected", {}).get("sources", []) if "configMap" in s
    ]


def _secret_sources(volume: dict[str, Any]) -> list[dict[str, Any]]:
    if "secret" in volume:
        return [{"name": volume["secret"]["secretName"], **volume["secret"]}]
    return [s["secret"] for s in volume.get("projected", {}).get("sources", []) if "secret" in s]


def _data(kind: str, name: str, folder: Path) -> dict[str, str]:
    docs = find(kind, name, folder) or find(kind, name, K8S)
    assert docs, f"no {kind} named {name} in {folder.relative_to(REPO)} or its parent"
    doc = docs[0]
    return {**doc.get("data", {}), **doc.get("stringData", {})}


def _files_of(volume: dict[str, Any], folder: Path) -> dict[str, str]:
    """Relative path -> content of every file a configMap/secret/projected volume shows."""
    files: dict[str, str] = {}
    for kind, sources in (
        ("ConfigMap", _configmap_sources(volume)),
        ("Secret", _secret_sources(volume)),
    ):
        for src in sources:
            data = _data(kind, src["name"], folder)
            items = src.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                assert item["key"] in data, f"{kind} {src['name']} has no key {item['key']}"
                files[item["path"]] = data[item["key"]]
    return files


def _config_text(path: Path) -> str:
    pod = _pod(path)
    sidecar = _sidecar(pod)
    config = _config_path(sidecar)
    mount = _mount_of(sidecar, config)
    files = _files_of(_volume(pod, mount["name"]), _folder(path))
    rel = str(PurePosixPath(config).relative_to(mount["mountPath"]))
    assert rel in files, f"{config} is not a file of volume {mount['name']}"
    return files[rel]


def _config(path: Path) -> dict[str, Any]:
    cfg: dict[str, Any] = yaml.safe_load(_config_text(path))
    return cfg


def _secret_paths(cfg: Any) -> list[str]:
    """Every `*_file` value anywhere in the config."""
    out: list[str] = []
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if isinstance(k, str) and k.endswith("_file") and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_secret_paths(v))
    elif isinstance(cfg, list):
        for v in cfg:
            out.extend(_secret_paths(v))
    return out


def _port(listen: str) -> int:
    return int(listen.rpartition(":")[2])


def test_every_manifest_parses_and_names_itself() -> None:
    docs = list(manifests())
    assert len(docs) >= 8
    for path, doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), path
        assert doc["metadata"]["name"], path
    kinds = {doc["kind"] for _, doc in docs}
    assert {"Deployment", "ConfigMap", "Secret", "Service", "PodMonitor", "PrometheusRule"} <= kinds


@pytest.mark.parametrize("path", DEPLOYMENTS, ids=lambda p: str(p.relative_to(K8S)))
class TestDeployment:
    def test_chatwatch_is_a_native_sidecar_running_the_image_default(self, path: Path) -> None:
        pod = _pod(path)
        sidecar = _sidecar(pod)
        assert sidecar["restartPolicy"] == "Always"
        (cmd,) = [a for w, a in dockerfile_stages()[-1].instructions if w == "CMD"]
        assert sidecar["args"] == yaml.safe_load(cmd)
        assert "command" not in sidecar  # the image's ENTRYPOINT stays

    def test_selector_matches_the_pod_labels(self, path: Path) -> None:
        dep = _deployment(path)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()

    def test_every_mount_names_a_volume(self, path: Path) -> None:
        pod = _pod(path)
        names = {v["name"] for v in pod["volumes"]}
        assert len(names) == len(pod["volumes"])
        for c in pod.get("initContainers", []) + pod["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in names, f"{c['name']} mounts unknown volume {m['name']}"
        used = {
            m["name"]
            for c in pod.get("initContainers", []) + pod["containers"]
            for m in c.get("volumeMounts", [])
        }
        assert used == names, f"volumes nobody mounts: {names - used}"

    def test_probes_reach_the_port_chatwatch_listens_on(self, path: Path) -> None:
        sidecar = _sidecar(_pod(path))
        ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
        assert ports["metrics"] == _port(_config(path)["server"]["listen"]) == 9317
        assert sidecar["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
        assert sidecar["readinessProbe"]["httpGet"]["path"] == "/-/ready"
        for probe in ("livenessProbe", "readinessProbe"):
            port = sidecar[probe]["httpGet"]["port"]
            assert port in ports or port in ports.values(), f"{probe} port {port}"

    def test_sidecar_is_locked_down(self, path: Path) -> None:
        sidecar = _sidecar(_pod(path))
        sc = sidecar["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert "add" not in sc["capabilities"]
        # Only the state folder is writable.
        writable = [m["mountPath"] for m in sidecar["volumeMounts"] if not m.get("readOnly")]
        assert writable == [_config(path)["state_dir"]]

    def test_resources_are_sized(self, path: Path) -> None:
        res = _sidecar(_pod(path))["resources"]
        assert res["requests"] == {"cpu": "50m", "memory": "64Mi"}
        assert res["limits"] == {"memory": "128Mi"}

    def test_state_dir_is_a_writable_pod_volume(self, path: Path) -> None:
        pod = _pod(path)
        cfg = _config(path)
        mount = _mount_of(_sidecar(pod), cfg["state_dir"])
        assert not mount.get("readOnly")
        assert "emptyDir" in _volume(pod, mount["name"])
        assert cfg.get("checkpoint", {}).get("path") is None  # under state_dir

    def test_secrets_come_from_the_secret_mount(self, path: Path) -> None:
        pod = _pod(path)
        sidecar = _sidecar(pod)
        secret_files = _secret_paths(_config(path))
        assert len(secret_files) == 2  # Slack URL, SMTP password
        for file in secret_files:
            mount = _mount_of(sidecar, file)
            volume = _volume(pod, mount["name"])
            assert _secret_sources(volume), f"{file} is not on a Secret volume"
            rel = str(PurePosixPath(file).relative_to(mount["mountPath"]))
            assert rel in _files_of(volume, _folder(path)), f"the Secret has no key {rel}"
        assert "api_url:" not in _config_text(path)
        assert "auth_password:" not in _config_text(path)

    def test_environment_variables_the_config_uses_are_set(self, path: Path) -> None:
        used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", _config_text(path)))
        defined = {e["name"] for e in _sidecar(_pod(path)).get("env", [])}
        assert used <= defined

    def test_config_loads_and_checks_with_the_pod_files(
        self, path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pod = _pod(path)
        sidecar = _sidecar(pod)
        for e in sidecar.get("env", []):
            monkeypatch.setenv(e["name"], e.get("value") or f"fake-{e['name'].lower()}")
        roots: dict[str, Path] = {}
        for m in sidecar["volumeMounts"]:
            target = tmp_path / m["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)
            for rel, content in _files_of(_volume(pod, m["name"]), _folder(path)).items():
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_text(content)
            roots[m["mountPath"]] = target
        roots.update(IMAGE_FILES)
        alternation = "|".join(re.escape(p) for p in sorted(roots, key=len, reverse=True))
        pattern = re.compile(rf"(?<![\w/.-])({alternation})(?=/|\"|'|\s|$)", re.M)
        config_file = tmp_path / _config_path(sidecar).lstrip("/")
        config_file.write_text(
            pattern.sub(lambda m: str(roots[m.group(1)]), config_file.read_text())
        )

        cfg = load(config_file)
        assert cfg.alerting.receivers
        assert [p for p in check_all(str(config_file))] == []
        slack = cfg.alerting.receiver("slack").slack_configs[0]
        assert slack.api_url.get_secret_value().startswith("https://hooks.slack.com/")
        rules = sorted(Path(p) for g in cfg.rule_files for p in glob.glob(str(cfg.resolve(g))))
        assert [r.read_text() for r in rules] == [(REPO / "rules" / "chatbot.yml").read_text()]


def test_sources_read_the_volume_the_chatbot_writes() -> None:
    pod = _pod(K8S / "deployment.yaml")
    (source,) = _config(K8S / "deployment.yaml")["sources"]
    for pattern in source["paths"]:
        ours = _mount_of(_sidecar(pod), pattern)
        theirs = _mount_of(_chatbot(pod), pattern)
        assert ours["name"] == theirs["name"]
        assert ours["mountPath"] == theirs["mountPath"] == "/var/log/chatbot"
        assert "emptyDir" in _volume(pod, ours["name"])
        assert ours.get("readOnly") is True and not theirs.get("readOnly")
    log_file = next(e["value"] for e in _chatbot(pod)["env"] if e["name"] == "LOG_FILE")
    assert PurePosixPath(log_file).match(source["paths"][0])


def test_node_logs_variant_tails_the_kubelets_cri_files_of_its_own_pod() -> None:
    path = K8S / "node-logs" / "deployment.yaml"
    pod = _pod(path)
    (source,) = _config(path)["sources"]
    assert source["format"] == "cri"
    (glob,) = source["paths"]
    assert glob.startswith("/var/log/containers/${POD_NAME}_${POD_NAMESPACE}_")
    container = glob.rsplit("_", 1)[1].removesuffix("-*.log")
    assert container in {c["name"] for c in pod["containers"]}
    mount = _mount_of(_sidecar(pod), glob)
    assert mount.get("readOnly") is True
    assert _volume(pod, mount["name"])["hostPath"]["path"] == mount["mountPath"] == "/var/log"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in _sidecar(pod)["env"]}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}


def test_the_main_pod_runs_nothing_as_root() -> None:
    pod = _pod(K8S / "deployment.yaml")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (user,) = [a for w, a in dockerfile_stages()[-1].instructions if w == "USER"]
    assert _sidecar(pod)["securityContext"]["runAsUser"] == int(user.split(":")[0])


def test_service_selects_the_pods_and_targets_chatwatchs_port() -> None:
    (svc,) = find("Service", "chatwatch")
    pod_labels = _deployment(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    sidecar_ports = {
        p["name"]: p["containerPort"] for p in _sidecar(_pod(K8S / "deployment.yaml"))["ports"]
    }
    target = port["targetPort"]
    assert sidecar_ports.get(target, target) == sidecar_ports["metrics"]


def test_podmonitor_selects_the_pods_and_a_named_port() -> None:
    (pm,) = find("PodMonitor", "chatwatch")
    pod_labels = _deployment(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert pm["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (endpoint,) = pm["spec"]["podMetricsEndpoints"]
    names = {p["name"] for p in _sidecar(_pod(K8S / "deployment.yaml"))["ports"]}
    assert endpoint["port"] in names
    assert endpoint["path"] == "/metrics"


def test_rules_configmap_is_the_pack_verbatim() -> None:
    data = _data("ConfigMap", "chatwatch-rules", K8S)
    assert data == {"chatbot.yml": (REPO / "rules" / "chatbot.yml").read_text()}


def test_prometheusrule_holds_the_pack_and_promtool_accepts_it(tmp_path: Path) -> None:
    (pr,) = find("PrometheusRule")
    pack = yaml_docs(REPO / "rules" / "chatbot.yml")[0]
    assert pr["spec"]["groups"] == pack["groups"]
    exported = tmp_path / "exported.yml"
    exported.write_text(yaml.safe_dump({"groups": pr["spec"]["groups"]}))
    result = subprocess.run(
        [require_tool("promtool"), "check", "rules", str(exported)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheusrule_is_what_export_rules_produces(tmp_path: Path) -> None:
    """The lead regenerates prometheusrule.yaml with `chatwatch export-rules`; it must match."""
    out = tmp_path / "exported.yaml"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "agent",
            "export-rules",
            "-c",
            str(REPO / "examples" / "chatwatch.yaml"),
            "--format",
            "prometheusrule",
            "--name",
            "chatwatch-chatbot-rules",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (ours,) = find("PrometheusRule")
    (exported,) = yaml_docs(out)
    assert exported["spec"] == ours["spec"]
    assert exported["metadata"]["name"] == ours["metadata"]["name"]
