"""`esms daemon`: APScheduler runs the sweep and the mail relay on an interval and the digest every morning.

Jobs live in memory only (nothing pickled). One pass runs at start to catch up after downtime. Only the daemon
holding the database's lease works; others stand by and take over when it expires. The holder renews the lease
during a pass (before the relay, and between messages through the relay's `keep_going`) and stops as soon as it
has lost it. SIGTERM or SIGINT lets the current pass finish, gives the lease up and exits 0; a database that
refuses writes stops the daemon with exit 4, saying so.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import FrameType

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from notifications.relay import deliver_due
from states.errors import EsmsError, InvalidFieldError
from workflow import lease
from workflow.engine import Workflow
from workflow.lease import ReadOnlyDatabaseError
from workflow.messages import queue_todays_digest
from workflow.purge import purge
from workflow.settings import Settings
from workflow.sweep import sweep

log = logging.getLogger("esms.daemon")


class Daemon:
    """The scheduler's jobs around one workflow, under the database lease."""

    def __init__(
        self, workflow: Workflow, settings: Settings, *, interval: float, lease_ttl: float, shared: bool = False
    ) -> None:
        self.workflow = workflow
        self.shared = shared
        self.settings = settings
        self.interval = interval
        self.lease_ttl = timedelta(seconds=lease_ttl)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._active: bool | None = None  # unknown until the first pass: log the first answer either way
        self._renewed_at = 0.0  # time.monotonic() of the last renewal
        self._lock = threading.Lock()
        #: What stopped the daemon for good (a read-only database); `run_daemon` raises it after the scheduler.
        self.fatal: EsmsError | None = None
        self.on_fatal: Callable[[], None] = lambda: None

    def has_lease(self) -> bool:
        """Take or renew the lease; log when this daemon becomes active or goes on standby."""
        held = lease.acquire(self.workflow.engine, self.holder, self.workflow.clock.wall(), self.lease_ttl)
        self._renewed_at = time.monotonic()
        if held != self._active:
            log.info(
                "%s: %s", self.holder, "active (holds the lease)" if held else "standby (another daemon is active)"
            )
            self._active = held
        return held

    def keeps_lease(self) -> bool:
        """During a pass: renew the lease every third of its life; False once another holder has it.

        Shared mode needs no lease to sweep or relay (row locks and fenced claims share the work): always True.
        """
        if self.shared:
            return True
        if time.monotonic() - self._renewed_at < self.lease_ttl.total_seconds() / 3:
            return bool(self._active)
        try:
            return self.has_lease()
        except EsmsError as error:  # cannot tell: stop working, as a daemon that lost the lease would
            log.warning("could not renew the lease, stopping this pass: %s", error)
            return False

    def stop_for_good(self, error: EsmsError) -> None:
        """A fault no pass can get over (a read-only database): log it once and stop the scheduler."""
        if self.fatal is None:
            self.fatal = error
            log.error("%s: stopping", error)
            self.on_fatal()

    def run_pass(self) -> None:
        """One pass: sweep the due projects, then deliver the due mail."""
        with self._lock:
            try:
                # Shared mode (PostgreSQL): every daemon sweeps, row locks share the work; the lease then only
                # elects who sends the digest.
                if not self.has_lease() and not self.shared:
                    return
                report = sweep(self.workflow)
                if not self.keeps_lease():
                    log.warning("%s: lease lost during the sweep: the mail is left to its holder", self.holder)
                    return
                relay = deliver_due(
                    self.workflow.engine, self.workflow.clock, self.settings.mail, keep_going=self.keeps_lease
                )
                if relay.paused:
                    log.warning("mail delivery paused: %s", relay.paused)
                if report.due or relay.attempted:
                    log.info(
                        "pass: %d due, %d transitions, %d reminders, %d flagged, %d skipped; mail: %d sent, "
                        "%d partial, %d to retry, %d dead",
                        report.due,
                        len(report.transitions),
                        len(report.reminders),
                        len(report.flagged),
                        len(report.skipped),
                        relay.sent,
                        relay.partial,
                        relay.retried,
                        relay.dead,
                    )
            except ReadOnlyDatabaseError as error:
                self.stop_for_good(error)
            except EsmsError as error:
                log.error("pass failed, retried next interval: %s", error)
            except Exception:  # a bug: logged once per pass, and the next pass still runs
                log.exception("pass failed, retried next interval")

    def queue_digest(self) -> None:
        """Queue today's digest for the programme team (once a day), if admin addresses are set."""
        with self._lock:
            try:
                if not self.has_lease():
                    return
                recipients = list(self.settings.mail.admin_emails)
                if not recipients and not any(c.admin_emails for c in self.workflow.campaigns.values()):
                    log.info("no ESMS_ADMIN_EMAILS nor campaign admin_emails: daily digest not sent")
                    return
                day, queued = queue_todays_digest(
                    self.workflow.engine,
                    self.workflow.campaigns,
                    recipients,
                    self.workflow.clock.now(),
                    self.settings.timezone,
                )
                log.info("digest of %s %s", day.isoformat(), "queued" if queued else "already queued")
            except ReadOnlyDatabaseError as error:
                self.stop_for_good(error)
            except EsmsError as error:
                log.error("digest failed: %s", error)

    def purge_personal_data(self) -> None:
        """Pseudonymise the owners of projects past their campaign's retention period (once a day)."""
        with self._lock:
            try:
                if not self.has_lease():
                    return
                done = purge(self.workflow)
                if done:
                    log.info("personal data purged from %d project(s): %s", len(done), [p.project for p in done])
            except ReadOnlyDatabaseError as error:
                self.stop_for_good(error)
            except EsmsError as error:
                log.error("purge failed, tried again tomorrow: %s", error)

    def release(self) -> None:
        """Give the lease up."""
        try:
            lease.release(self.workflow.engine, self.holder)
        except EsmsError as error:
            log.warning("could not release the lease: %s", error)


def run_daemon(
    workflow: Workflow,
    settings: Settings,
    *,
    interval: float,
    lease_ttl: float | None = None,
    shared: bool = False,
) -> int:
    """Run until SIGTERM or SIGINT; return the exit code."""
    if shared and workflow.engine.dialect.name != "postgresql":
        raise InvalidFieldError("shared", "needs PostgreSQL (row locks); on SQLite one daemon works at a time")
    ttl = lease_ttl if lease_ttl is not None else max(3 * interval, 3.0)
    daemon = Daemon(workflow, settings, interval=interval, lease_ttl=ttl, shared=shared)
    try:
        daemon.has_lease()  # a read-only database is said at once (exit 4), not taken for another daemon
    except ReadOnlyDatabaseError:
        raise
    except EsmsError as error:  # unreachable for now: the passes keep trying, as they would later
        log.error("cannot take the lease yet: %s", error)
    scheduler = BlockingScheduler(
        timezone=settings.timezone,
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(int(interval), 1)},
    )
    scheduler.add_job(
        daemon.run_pass,
        IntervalTrigger(seconds=interval, timezone=settings.timezone),
        id="sweep",
        name="deadline sweep and mail relay",
        next_run_time=workflow.clock.wall(),  # catch up at once after downtime
        misfire_grace_time=max(int(interval), 1),
        coalesce=True,
        max_instances=1,
    )
    digest_at = settings.digest_time
    scheduler.add_job(
        daemon.queue_digest,
        CronTrigger(hour=digest_at.hour, minute=digest_at.minute, timezone=settings.timezone),
        id="digest",
        name="daily digest",
        misfire_grace_time=3600,  # a daemon restarted within the hour still sends the morning digest
        coalesce=True,
        max_instances=1,
    )

    scheduler.add_job(
        daemon.purge_personal_data,
        CronTrigger(hour=digest_at.hour, minute=digest_at.minute, second=30, timezone=settings.timezone),
        id="purge",
        name="daily purge of personal data past retention",
        misfire_grace_time=3600,
        coalesce=True,
        max_instances=1,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: finishing the current pass", signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "daemon %s started: sweep every %ss, digest at %s %s, lease %ss",
        daemon.holder,
        interval,
        digest_at.strftime("%H:%M"),
        settings.timezone,
        ttl,
    )
    daemon.on_fatal = lambda: scheduler.shutdown(wait=False)
    scheduler.start()
    if daemon.fatal is not None:
        raise daemon.fatal
    daemon.release()
    log.info("daemon %s stopped", daemon.holder)
    return 0
