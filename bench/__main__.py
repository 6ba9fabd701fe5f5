"""`make bench`: run every `bench/bench_*.py` module's `main()` in turn.

    python -m bench                # all of them
    python -m bench metrics rules  # only bench_metrics.py and bench_rules.py

To add a benchmark, drop a `bench/bench_<name>.py` with a `main()` that prints its
figures (and returns a non-zero int on a failed check, or None). Each main() is called
with no command-line arguments, so its defaults must be the `make bench` settings. Each
runs in a process of its own, so memory figures (peak RSS) are its own, not the
leftovers of the benchmark before it.

A benchmark states each target it checks as one line, `GOAL <what>: met (<figures>)` or
`GOAL <what>: NOT MET (<figures>)`; after running several, the goals of all of them are
printed again together, as one table.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str]) -> int:
    names = argv or discover()
    unknown = [n for n in names if n not in discover()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(discover())}")
        return 2
    if len(names) > 1:
        return _each_in_its_own_process(names)
    sys.path.insert(0, str(HERE.parent))
    failed = []
    for name in names:
        started = time.monotonic()
        print(f"\n##### bench_{name}", flush=True)
        saved_argv = sys.argv
        sys.argv = [f"bench_{name}"]
        try:
            module = importlib.import_module(f"bench.bench_{name}")
            code = module.main()
        except SystemExit as exc:
            code = exc.code
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            sys.argv = saved_argv
        print(f"##### bench_{name}: {time.monotonic() - started:.1f} s", flush=True)
        if code not in (None, 0):
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


def _each_in_its_own_process(names: list[str]) -> int:
    failed = []
    goals: list[tuple[str, str]] = []
    for name in names:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench", name],
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:  # passed through as it comes
            print(line, end="", flush=True)
            if line.startswith("GOAL "):
                goals.append((name, line.removeprefix("GOAL ").rstrip("\n")))
        if proc.wait() != 0:
            failed.append(name)
    if goals:
        print("\n##### goals")
        width = max(len(n) for n, _ in goals)
        for name, goal in goals:
            print(f"{name:<{width}}  {goal}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
