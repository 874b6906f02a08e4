"""The results table: one row per measured figure, set against its baseline, with the goal and its verdict."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

MET = "met"
NOT_MET = "**NOT met**"
INFO = "—"


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    case: str
    backend: str
    size: str
    result: str
    baseline: str
    ratio: str
    goal: str = ""
    verdict: str = INFO


@dataclass(frozen=True)
class Goal:
    """A goal of the issue and whether this run met it."""

    name: str
    met: bool
    detail: str


HEADERS = ("case", "backend", "N", "result", "baseline (same run)", "ratio", "goal", "verdict")


def verdict(met: bool) -> str:
    """The verdict cell of a goal."""
    return MET if met else NOT_MET


def count(n: int) -> str:
    """`100 000`: thin-spaced thousands, as the issue writes them."""
    return f"{n:,}".replace(",", " ")


def seconds(value: float) -> str:
    """A duration with a sensible unit."""
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{value * 1e3:.2f} ms" if value < 0.1 else f"{value * 1e3:.0f} ms"
    return f"{value:.2f} s"


def megabytes(kib: int) -> str:
    """KiB (what /proc reports) as MB (10⁶ bytes, the unit of the goal)."""
    return f"{kib * 1024 / 1e6:.0f} MB"


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def markdown_table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table, columns padded so that it also reads well in a terminal."""
    cells = [list(HEADERS)] + [
        [r.case, r.backend, r.size, r.result, r.baseline, r.ratio, r.goal, r.verdict] for r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    separator = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), separator, *(line(c) for c in cells[1:])])


def goals_summary(goals: Sequence[Goal]) -> str:
    """The goals, one per line, met or not."""
    ordered = sorted(goals, key=lambda g: g.name.split(".")[0])
    return "\n".join(f"- {'met' if g.met else '**NOT met**'}: {g.name} — {g.detail}" for g in ordered)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(folder: Path) -> str:
    """The file system type holding `folder` (SQLite commits are fsyncs: it matters)."""
    try:
        best = ("", "unknown", "")
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, kind, *_ = line.split()
            if str(folder.resolve()).startswith(mount) and len(mount) > len(best[0]):
                best = (mount, kind, device)
        return f"{best[1]} on {best[2]}"
    except OSError:
        return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def code_version() -> str:
    """The commit measured, and whether the working tree had uncommitted changes (read-only git)."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        head = subprocess.run(  # noqa: S603 (git, read-only)
            [git, "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(  # noqa: S603 (git, read-only)
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return f"{head}" + (f" + uncommitted changes to {len(status)} tracked files" if status else "")


def machine(workdir: Path, postgres_version: str | None) -> list[tuple[str, str]]:
    """What the figures were measured on."""
    return [
        ("CPU", _cpu_model()),
        ("cores", f"{os.cpu_count()} (os.cpu_count)"),
        ("RAM", _ram()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres_version or "not run (no URL)"),
        ("SQLAlchemy", sqlalchemy.__version__),
        ("code", code_version()),
        ("scratch files", f"{workdir} ({_filesystem(workdir)})"),
        ("load average at start", load_average()),
    ]


def machine_block(items: Sequence[tuple[str, str]]) -> str:
    """The machine description, one `- key: value` line each."""
    return "\n".join(f"- {key}: {value}" for key, value in items)
