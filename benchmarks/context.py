"""What every case needs: scratch databases, campaigns, the run's options, and where results go."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.databases import Databases
from benchmarks.report import Goal, Row
from workflow.campaigns import Campaign


@dataclass
class Context:
    """The run: options, scratch space, and the rows and goals gathered so far."""

    databases: Databases
    campaigns: dict[str, Campaign]
    config_dir: Path
    workdir: Path
    sizes: list[int]
    quick: bool
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @property
    def largest(self) -> int:
        """The largest database size of the run."""
        return max(self.sizes)

    def log(self, message: str) -> None:
        """Progress, on stderr, with the time since the start."""
        print(f"[{time.perf_counter() - self.started:7.1f} s] {message}", file=sys.stderr, flush=True)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """`items` in slices of `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_sweep_child(url: str, config_dir: Path, instant: str) -> dict[str, Any]:
    """Run `benchmarks.sweepchild` in a fresh interpreter and return its JSON report."""
    done = subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "benchmarks.sweepchild", url, str(config_dir), instant],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sweep child failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
