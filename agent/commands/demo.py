"""`chatwatch demo` (`make run`): a demo chatbot writes logs and chatwatch watches them.

It uses the files a reader of the repository sees: `examples/demo_writer.py` writes the
log, `examples/chatwatch.yaml` is the config (its paths rewritten into a working folder)
and `rules/*.yml` is the rule pack, with alerts printed by the console receiver. The
agent's web page is the first thing printed; a temporary working folder is removed when
the demo stops (one given with `--dir` is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from agent.app import Agent
from agent.config import ConfigError, load

_REPO = Path(__file__).resolve().parents[2]


def demo_config(repo: Path, workdir: Path, listen: str) -> dict[str, Any]:
    """The bundled example config, pointed at the working folder and the repo's rule pack."""
    raw: dict[str, Any] = yaml.safe_load((repo / "examples" / "chatwatch.yaml").read_text())
    raw["sources"][0]["paths"] = [str(workdir / "chatbot.log")]
    raw["state_dir"] = str(workdir / "state")
    raw["rule_files"] = [str(repo / "rules" / "*.yml")]
    if "pricing_file" in raw:  # beside the example config, not in the working folder
        raw["pricing_file"] = str(repo / "examples" / raw["pricing_file"])
    raw.setdefault("server", {})["listen"] = listen
    return raw


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="a demo chatbot writes logs and chatwatch watches them")
    p.add_argument("--dir", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--listen", default="127.0.0.1:9317")
    p.add_argument(
        "--duration", type=float, default=0, help="stop after N seconds (0: run until ^C)"
    )
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    if not (_REPO / "examples" / "demo_writer.py").exists():
        print(
            "chatwatch demo runs from a source checkout (it uses examples/ and rules/); "
            "try `make run` in the repository",
            file=sys.stderr,
        )
        return 2
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="chatwatch-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return _demo(args, workdir)
    finally:
        if not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)


def _demo(args: argparse.Namespace, workdir: Path) -> int:
    config_path = workdir / "chatwatch.yaml"
    config_path.write_text(
        yaml.safe_dump(demo_config(_REPO, workdir, args.listen), sort_keys=False)
    )
    try:
        cfg = load(config_path)
        agent = Agent(str(config_path), cfg)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1

    log = workdir / "chatbot.log"
    writer = subprocess.Popen(
        [sys.executable, str(_REPO / "examples" / "demo_writer.py"), "--out", str(log)],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://{args.listen}"
    print(
        f"""
chatwatch demo: open {base}/ in a browser

  pages                  {base}/  /alerts  /rules  /graph  /silences  /config
  a demo chatbot writes  {log}
    (about 20 lines/s; a bad spell of errors 1 minute in, then every 8 minutes)
  config                 {config_path}
  metrics                {base}/metrics
  alerts                 {base}/api/v1/alerts   (and printed below by the console receiver)
  rules                  {base}/api/v1/rules
Ctrl-C stops both{"" if args.dir else " and removes " + str(workdir)}.
""",
        flush=True,
    )
    try:
        return asyncio.run(_run(agent, args.duration))
    finally:
        writer.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            writer.wait(5)


async def _run(agent: Agent, duration: float) -> int:
    if duration > 0:
        asyncio.get_running_loop().call_later(duration, agent.stop)
    return await agent.run()
