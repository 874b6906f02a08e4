"""One sweep in a fresh process, measured from inside: `python -m benchmarks.sweepchild URL CONFIG_DIR INSTANT`.

Prints one JSON document: the sweep's wall and CPU time, what it did, and the process's peak resident set
(`VmHWM` of /proc/self/status) before the sweep (imports, engine, campaigns: the baseline) and after it.
Running in its own process keeps the parent's generated rows and earlier cases out of the memory figure.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path


def peak_rss_kib() -> int:
    """The process's peak resident set size so far, in KiB (VmHWM), or ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def main(argv: list[str]) -> int:
    """Run one sweep at `INSTANT` on the database `URL` with the campaigns of `CONFIG_DIR`; print JSON."""
    url, config_dir, instant = argv
    from workflow.campaigns import load_campaigns
    from workflow.clock import SimulatedClock
    from workflow.db import make_engine
    from workflow.engine import Workflow
    from workflow.sweep import sweep

    engine = make_engine(url)
    workflow = Workflow(engine, load_campaigns(Path(config_dir)), SimulatedClock(datetime.fromisoformat(instant)))
    with engine.connect():  # the pool's first connection, so that the baseline includes the driver
        pass
    before = peak_rss_kib()
    started, cpu = time.perf_counter(), time.process_time()
    report = sweep(workflow)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    after = peak_rss_kib()
    engine.dispose()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "due": report.due,
                "transitions": len(report.transitions),
                "reminders": len(report.reminders),
                "flagged": len(report.flagged),
                "skipped": len(report.skipped),
                "first_skip": report.skipped[0] if report.skipped else None,
                "peak_rss_before_kib": before,
                "peak_rss_after_kib": after,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
