"""Helpers for the deploy tests: the repository's files, manifests, PromQL metric names."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

from tests.realservers import require

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
K8S = REPO / "examples" / "kubernetes"
RUNBOOK_BASE = "https://github.com/chatwatch/chatwatch/blob/main/"

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def require_tool(name: str) -> str:
    """The tool's path; skipped where it is missing, an error in CI (tests.realservers)."""
    return require(name)


def yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Every non-empty document of a (multi-document) YAML file."""
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifests(folder: Path = K8S) -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(folder.rglob("*.yaml")):
        for doc in yaml_docs(path):
            yield path, doc


def find(kind: str, name: str | None = None, folder: Path = K8S) -> list[dict[str, Any]]:
    return [
        doc
        for _, doc in manifests(folder)
        if doc.get("kind") == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """Every vector selector in a PromQL expression (inside ranges too)."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def metric_names(expr: str) -> set[str]:
    return {s.name for s in selectors(expr) if s.name}


def ranges(expr: str) -> list[float]:
    """Seconds of every range vector and subquery range in the expression."""
    found: list[float] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
            assert node.range is not None
            found.append(node.range.total_seconds())

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def defined_names(metrics: list[dict[str, Any]]) -> set[str]:
    """Metric names a config's `metrics:` exposes, histograms with their suffixes."""
    names: set[str] = set()
    for m in metrics:
        names.add(m["name"])
        if m["type"] == "histogram":
            names.update(m["name"] + s for s in HISTOGRAM_SUFFIXES)
    return names


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    out: set[str] = set()
    in_code = False
    for line in markdown.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(github_anchor(line.lstrip("#")))
    return out


def alerting_rules(path: Path = RULES / "chatbot.yml") -> list[dict[str, Any]]:
    doc = yaml_docs(path)[0]
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


@dataclass
class Stage:
    name: str
    instructions: list[tuple[str, str]]


def dockerfile_stages(path: Path | None = None) -> list[Stage]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments); continuations joined."""
    path = path or REPO / "Dockerfile"
    logical: list[str] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    stages: list[Stage] = []
    for line in logical:
        word, _, args = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, []))
        stages[-1].instructions.append((word, args.strip()))
    return stages


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `rel` (a path relative to the context) out; last match wins."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = [rel] + [str(p) for p in Path(rel).parents if str(p) != "."]
        hit = any(
            fnmatch.fnmatchcase(c, pat)
            or (pat.startswith("**/") and fnmatch.fnmatchcase(Path(c).name, pat[3:]))
            for c in candidates
        )
        if hit:
            ignored = not negate
    return ignored


def self_metrics() -> set[str]:
    """Every `chatwatch_*` metric the agent registers, histograms with their suffixes."""
    names: set[str] = set()
    for path in (REPO / "agent").rglob("*.py"):
        text = path.read_text()
        names.update(re.findall(r"\"(chatwatch_[a-z_]+[a-z])\"", text))
        for hist in re.findall(r"histogram\(\s*\"(chatwatch_[a-z_]+)\"", text):
            names.update(hist + s for s in ("_bucket", "_sum", "_count"))
    return names
