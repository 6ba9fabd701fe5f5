"""`chatwatch export-rules -c CONFIG`: the config's rules for a central Prometheus.

The groups are written as they were read, less chatwatch's own keys (`cooldown`), as a
Prometheus rule file or a prometheus-operator PrometheusRule resource.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from agent.alerting.group import RuleGroup
from agent.alerting.rule_file import EXTENSION_KEYS, RuleError
from agent.config import ConfigError, load
from agent.pipeline import load_rules


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export-rules", help="print the config's rules for a central Prometheus")
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.add_argument(
        "--format",
        choices=["prometheus", "prometheusrule"],
        default="prometheus",
        help="a Prometheus rule file, or a prometheus-operator PrometheusRule resource",
    )
    p.add_argument("--name", default="chatwatch-rules", help="PrometheusRule metadata.name")
    p.add_argument("--namespace", default=None, help="PrometheusRule metadata.namespace")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.set_defaults(func=main)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (long expressions, annotations) as YAML literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def exported_groups(groups: Sequence[RuleGroup]) -> list[dict[str, Any]]:
    """The groups as written, without chatwatch's extension keys (`cooldown`)."""
    names: dict[str, str] = {}
    out = []
    for g in groups:
        if g.name in names and names[g.name] != g.file:
            raise RuleError(
                [
                    f"{g.file}: group {g.name!r}: also defined in {names[g.name]}; group names "
                    "must be unique to export them as one file"
                ]
            )
        names[g.name] = g.file
        source = dict(g.source)
        source["rules"] = [
            {k: v for k, v in rule.items() if k not in EXTENSION_KEYS}
            for rule in (source.get("rules") or [])
        ]
        out.append(source)
    return out


def export_rules(
    groups: Sequence[RuleGroup],
    fmt: str = "prometheus",
    name: str = "chatwatch-rules",
    namespace: str | None = None,
) -> str:
    """YAML for a central Prometheus: a rule file, or a PrometheusRule resource."""
    doc: dict[str, Any] = {"groups": exported_groups(groups)}
    if fmt == "prometheusrule":
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {"app.kubernetes.io/managed-by": "chatwatch"}
        doc = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata,
            "spec": doc,
        }
    text: str = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return text


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load(args.config)
        groups = load_rules(cfg)
        text = export_rules(groups, args.format, args.name, args.namespace)
    except (ConfigError, RuleError) as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    if not groups and not cfg.rule_files:
        print(f"{args.config}: rule_files is empty; nothing to export", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0
