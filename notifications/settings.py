"""How messages leave: the mail settings the relay and the transports read (built by `workflow.settings`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TLS_MODES = ("none", "starttls", "tls")


@dataclass(frozen=True, kw_only=True)
class MailSettings:
    """How messages leave: an SMTP relay, or `.eml` files in `mail_dir` when no host is set."""

    smtp_host: str | None
    smtp_port: int
    smtp_tls: str
    smtp_username: str | None
    smtp_password: str | None = field(repr=False)  # a secret: kept out of repr, logs and messages
    smtp_timeout: float
    mail_from: str
    mail_dir: Path
    admin_emails: tuple[str, ...]
    max_attempts: int
