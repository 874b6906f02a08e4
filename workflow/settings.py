"""Settings: from the environment, over an optional settings TOML, over defaults.

| environment            | settings file key | default                                              |
|------------------------|-------------------|------------------------------------------------------|
| ESMS_DATABASE_URL      | database_url      | sqlite:///<data dir>/esms.sqlite3                    |
| ESMS_CONFIG_DIR        | config_dir        | the project's `config/` folder                       |
| ESMS_DATA_DIR          | data_dir          | $XDG_DATA_HOME/esms (~/.local/share/esms)            |
| ESMS_TIMEZONE          | timezone          | Europe/Paris (for `--now` values given without offset) |
| ESMS_SETTINGS_FILE     | —                 | <config dir>/settings.toml, when it exists           |
| ESMS_SMTP_HOST         | smtp_host         | none: messages are written as .eml files to mail_dir  |
| ESMS_SMTP_PORT         | smtp_port         | 25 (587 with starttls, 465 with tls)                 |
| ESMS_SMTP_TLS          | smtp_tls          | none (none, starttls or tls)                         |
| ESMS_SMTP_USERNAME     | smtp_username     | none (no login)                                      |
| ESMS_SMTP_PASSWORD     | smtp_password     | none; a secret: never printed nor logged             |
| ESMS_SMTP_TIMEOUT      | smtp_timeout      | 30 (seconds)                                         |
| ESMS_MAIL_FROM         | mail_from         | ESMS numérique <no-reply@esms-numerique.invalid>     |
| ESMS_MAIL_DIR          | mail_dir          | <data dir>/mail                                      |
| ESMS_ADMIN_EMAILS      | admin_emails      | none (comma-separated; the daily digest goes there)  |
| ESMS_MAIL_MAX_ATTEMPTS | mail_max_attempts | 48 (then dead; backoff capped at 1 h: about 2 days) |
| ESMS_SWEEP_INTERVAL    | sweep_interval    | 60 (seconds between two daemon passes)               |
| ESMS_DIGEST_TIME       | digest_time       | 08:00 (local time of the daily digest)               |
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from notifications.settings import TLS_MODES, MailSettings
from states.errors import InvalidArgumentError
from workflow.tomlfile import Section, load_toml

FILE_KEYS = (
    "database_url",
    "config_dir",
    "data_dir",
    "timezone",
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "smtp_username",
    "smtp_password",
    "smtp_timeout",
    "mail_from",
    "mail_dir",
    "admin_emails",
    "mail_max_attempts",
    "sweep_interval",
    "digest_time",
)
#: The `config/` folder shipped beside the packages (an editable or source install).
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the database, the campaign files and the data folder are; how mail leaves; how the daemon runs."""

    database_url: str
    config_dir: Path
    data_dir: Path
    timezone: ZoneInfo
    mail: MailSettings
    sweep_interval: float
    digest_time: time


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from `environ` (default: the process environment) and the optional settings file."""
    env = os.environ if environ is None else environ
    file_values: dict[str, str] = {}
    settings_file = env.get("ESMS_SETTINGS_FILE")
    default_config = Path(env.get("ESMS_CONFIG_DIR") or SHIPPED_CONFIG_DIR)
    path = Path(settings_file) if settings_file else default_config / "settings.toml"
    if settings_file or path.is_file():
        file_values = _read_settings_file(path)

    def pick(env_key: str, file_key: str) -> str | None:
        return env.get(env_key) or file_values.get(file_key)

    config_dir = Path(pick("ESMS_CONFIG_DIR", "config_dir") or SHIPPED_CONFIG_DIR)
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", ".")) / ".local" / "share")
    data_dir = Path(pick("ESMS_DATA_DIR", "data_dir") or Path(xdg) / "esms")
    database_url = pick("ESMS_DATABASE_URL", "database_url") or f"sqlite:///{data_dir / 'esms.sqlite3'}"
    zone_name = pick("ESMS_TIMEZONE", "timezone") or "Europe/Paris"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgumentError(f"ESMS_TIMEZONE: {zone_name!r} is not a known time zone") from None
    return Settings(
        database_url=database_url,
        config_dir=config_dir,
        data_dir=data_dir,
        timezone=zone,
        mail=_mail_settings(pick, data_dir),
        sweep_interval=_number(pick("ESMS_SWEEP_INTERVAL", "sweep_interval") or "60", "ESMS_SWEEP_INTERVAL", 0.1),
        digest_time=_time_of_day(pick("ESMS_DIGEST_TIME", "digest_time") or "08:00", "ESMS_DIGEST_TIME"),
    )


def _mail_settings(pick: Callable[[str, str], str | None], data_dir: Path) -> MailSettings:
    tls = (pick("ESMS_SMTP_TLS", "smtp_tls") or "none").lower()
    if tls not in TLS_MODES:
        raise InvalidArgumentError(f"ESMS_SMTP_TLS: {tls!r} is not one of {', '.join(TLS_MODES)}")
    default_port = {"none": 25, "starttls": 587, "tls": 465}[tls]
    port = int(_number(pick("ESMS_SMTP_PORT", "smtp_port") or str(default_port), "ESMS_SMTP_PORT", 1))
    admins = tuple(a.strip() for a in (pick("ESMS_ADMIN_EMAILS", "admin_emails") or "").split(",") if a.strip())
    return MailSettings(
        smtp_host=pick("ESMS_SMTP_HOST", "smtp_host"),
        smtp_port=port,
        smtp_tls=tls,
        smtp_username=pick("ESMS_SMTP_USERNAME", "smtp_username"),
        smtp_password=pick("ESMS_SMTP_PASSWORD", "smtp_password"),
        smtp_timeout=_number(pick("ESMS_SMTP_TIMEOUT", "smtp_timeout") or "30", "ESMS_SMTP_TIMEOUT", 0.1),
        mail_from=pick("ESMS_MAIL_FROM", "mail_from") or "ESMS numérique <no-reply@esms-numerique.invalid>",
        mail_dir=Path(pick("ESMS_MAIL_DIR", "mail_dir") or data_dir / "mail"),
        admin_emails=admins,
        max_attempts=int(
            _number(pick("ESMS_MAIL_MAX_ATTEMPTS", "mail_max_attempts") or "48", "ESMS_MAIL_MAX_ATTEMPTS", 1)
        ),
    )


def _number(text: str, name: str, minimum: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgumentError(f"{name}: {text!r} is not a number") from None
    if not minimum <= value < 1e9:
        raise InvalidArgumentError(f"{name}: {text} is out of range (at least {minimum})")
    return value


def _time_of_day(text: str, name: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"{name}: {text!r} is not a time of day such as 08:00") from None


def _read_settings_file(path: Path) -> dict[str, str]:
    section = Section(str(path), load_toml(path))
    values = {}
    for key in FILE_KEYS:
        value = section.raw(key, required=False)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise section.fail(key, "must be a string or a number")
        values[key] = str(value)
    section.finish()
    return values
