"""Checkpoints on disk: atomic writes, failures counted, corrupt files set aside, pruning."""

from __future__ import annotations

from pathlib import Path

import orjson

from agent.sources.checkpoint import Checkpoint, Checkpoints
from agent.support.selfmetrics import SelfMetrics


def _cp(ino: int, offset: int, updated: float = 1000.0) -> Checkpoint:
    return Checkpoint(
        source="app",
        path=f"/var/log/app{ino}.log",
        dev=1,
        ino=ino,
        head_len=1024,
        head_hash=f"h{ino}",
        offset=offset,
        tail_hash="t",
        updated=updated,
    )


def _count(stats: SelfMetrics, name: str) -> float:
    family = stats.family(name)
    return 0.0 if family is None else family.get(())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "checkpoints.json"
    stats = SelfMetrics()
    cps = Checkpoints(path, stats)
    cps.put(_cp(7, 4096))
    assert cps.save(now=2000.0)
    doc = orjson.loads(path.read_bytes())
    assert doc["sources"]["app"]["1:7:h7"]["offset"] == 4096
    assert doc["sources"]["app"]["1:7:h7"]["path"] == "/var/log/app7.log"
    assert [p.name for p in path.parent.iterdir()] == ["checkpoints.json"]
    assert cps.save(now=2000.0)  # nothing changed: not written again
    assert _count(stats, "chatwatch_checkpoint_writes_total") == 1

    again = Checkpoints(path, SelfMetrics())
    again.load()
    assert again.for_source("app") == [_cp(7, 4096)]
    assert again.for_source("other") == []


def test_failed_write_is_counted_and_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    stats = SelfMetrics()
    cps = Checkpoints(path, stats)
    cps.put(_cp(1, 10))
    assert cps.save(now=2000.0)
    (tmp_path / "blocker").write_text("a file where a directory should be")
    cps.path = tmp_path / "blocker" / "checkpoints.json"
    cps.put(_cp(1, 20))
    assert not cps.save(now=2000.0)
    assert _count(stats, "chatwatch_checkpoint_write_failures_total") == 1
    assert orjson.loads(path.read_bytes())["sources"]["app"]["1:1:h1"]["offset"] == 10


def test_corrupt_file_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.json"
    path.write_bytes(b'{"version": 1, "sources": {"app": {"1:1:h"')  # torn by hand
    cps = Checkpoints(path, SelfMetrics())
    cps.load()
    assert len(cps) == 0
    assert (tmp_path / "checkpoints.json.corrupt").exists()
    assert not path.exists()


def test_files_gone_for_long_are_pruned(tmp_path: Path) -> None:
    cps = Checkpoints(tmp_path / "cp.json", SelfMetrics(), forget_after=3600)
    cps.put(_cp(1, 10, updated=0.0), live=False)  # gone, old
    cps.put(_cp(2, 10, updated=9000.0), live=False)  # gone, recent
    cps.put(_cp(3, 10, updated=0.0))  # still open (idle): kept
    assert cps.save(now=10000.0)
    assert sorted(cp.ino for cp in cps.for_source("app")) == [2, 3]
    cps.release("app", "1:3:h3")
    assert cps.save(now=10000.0)
    assert [cp.ino for cp in cps.for_source("app")] == [2]
