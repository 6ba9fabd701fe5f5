"""The node-logs variant end to end: the kubelet's layout of container logs on a node
(`/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` in the CRI format, linked from
`/var/log/containers/<pod>_<ns>_<container>-<id>.log`) mirrored in a temporary folder,
and chatwatch run with examples/kubernetes/node-logs' config, POD_NAME and POD_NAMESPACE
set as the downward API sets them. Only the chatbot container of this pod is read."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy_support import K8S, REPO, yaml_docs
from tests.realservers import free_port, running_chatwatch, wait_until

POD, NAMESPACE, UID = "chatbot-7d9f8b6c5-x2x8q", "support", "0f4c1b5e-8a1d-4c1e-9a55-3f0e2b7c9d11"


def _cri(stamp: str, payload: str, chunk: int = 0) -> str:
    """CRI lines for one log line; with `chunk`, split into partial (P) records."""
    if not chunk:
        return f"{stamp} stdout F {payload}\n"
    parts = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    tags = ["P"] * (len(parts) - 1) + ["F"]
    return "".join(f"{stamp} stdout {t} {p}\n" for t, p in zip(tags, parts, strict=True))


def _kubelet_log(root: Path, pod: str, container: str, lines: list[str]) -> int:
    """Write the container's log as the kubelet does; returns the number of CRI records."""
    folder = root / "var/log/pods" / f"{NAMESPACE}_{pod}_{UID}" / container
    folder.mkdir(parents=True)
    target = folder / "0.log"
    out = []
    for i, line in enumerate(lines):
        stamp = f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.{i:09d}Z"  # RFC 3339, ns
        out.append(_cri(stamp, line, chunk=64 if i % 7 == 0 else 0))
    target.write_text("".join(out))
    links = root / "var/log/containers"
    links.mkdir(parents=True, exist_ok=True)
    link = links / f"{pod}_{NAMESPACE}_{container}-{'ab12' * 16}.log"
    link.symlink_to(target)
    return sum(text.count("\n") for text in out)


def test_node_logs_config_reads_this_pods_chatbot_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo.log"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "examples/demo_writer.py"),
            "--out",
            str(demo),
            "--rate",
            "0",
            "--lines",
            "2000",
            "--seed",
            "5",
            "--burst-every",
            "0",
        ],
        check=True,
        timeout=120,
    )
    lines = demo.read_text().splitlines()
    requests = sum(1 for ln in lines if json.loads(ln)["event"] == "http_request")
    records = _kubelet_log(tmp_path, POD, "chatbot", lines)
    assert records > len(lines)  # some lines were split into partial records
    # Noise that must not be read: another container of the pod, another pod.
    _kubelet_log(tmp_path, POD, "istio-proxy", lines[:50])
    _kubelet_log(tmp_path, "chatbot-other-pod", "chatbot", lines[:50])

    (cm,) = [d for d in yaml_docs(K8S / "node-logs/configmap.yaml") if d["kind"] == "ConfigMap"]
    text = cm["data"]["chatwatch.yaml"]
    text = text.replace("/var/log/", f"{tmp_path}/var/log/")
    text = text.replace("/usr/share/chatwatch/rules/", f"{REPO}/rules/")
    config = yaml.safe_load(text)
    port = free_port()
    config["state_dir"] = str(tmp_path / "state")
    config["server"]["listen"] = f"127.0.0.1:{port}"
    config["alerting"] = {
        "route": {"receiver": "log"},
        "receivers": [{"name": "log", "console_configs": [{}]}],
    }
    path = tmp_path / "chatwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("POD_NAME", POD)
    monkeypatch.setenv("POD_NAMESPACE", NAMESPACE)
    assert os.environ["POD_NAME"] == POD

    def counted() -> float:
        total = 0.0
        for m in re.finditer(r"^chatbot_http_requests_total\{[^}]*\} (\S+)$", cw.metrics(), re.M):
            total += float(m.group(1))
        return total

    with running_chatwatch(path, port, tmp_path) as cw:
        wait_until(lambda: counted() >= requests, timeout=30, what="every request counted")
        metrics = cw.metrics()
        assert counted() == requests
        assert re.search(r'^chatwatch_files_watched\{source="chatbot"\} 1\.0$', metrics, re.M)
        assert re.search(
            rf'^chatwatch_lines_read_total\{{source="chatbot"\}} {records}\.0$', metrics, re.M
        )
        # Partial (P) records are joined: one event per line the chatbot wrote.
        assert re.search(
            rf'^chatwatch_events_total\{{source="chatbot"\}} {len(lines)}\.0$', metrics, re.M
        )
        assert "chatbot_last_event_timestamp_seconds " in metrics
