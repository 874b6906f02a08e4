"""Settings: from the environment, over an optional settings TOML, over defaults.

The `ESMS_*` variables are read by pydantic-settings; the settings file is validated by a pydantic model like
the other files users write. An empty variable or value counts as unset.

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
| ESMS_MAIL_FROM         | mail_from         | ESMS numérique <esms-numerique@esms-numerique.invalid>     |
| ESMS_MAIL_DIR          | mail_dir          | <data dir>/mail                                      |
| ESMS_ADMIN_EMAILS      | admin_emails      | none (comma-separated; the daily digest goes there)  |
| ESMS_MAIL_MAX_ATTEMPTS | mail_max_attempts | 48 (then dead; backoff capped at 1 h: about 2 days) |
| ESMS_SWEEP_INTERVAL    | sweep_interval    | 60 (seconds between two daemon passes; 0.1 to 86400) |
| ESMS_DIGEST_TIME       | digest_time       | 08:00 (local time of the daily digest)               |
| ESMS_AUDIT_KEY         | audit_key         | none; a secret: the audit chain's HMAC key (below)   |

`ESMS_AUDIT_KEY` turns the audit chain across projects into HMAC-SHA256 (`workflow.audit`), so that a chain
recomputed by someone with the database but not the key does not verify. Keep it outside the database (the
environment, or a settings file readable by the service only), and give every process that writes or verifies
the log (CLI, daemon, web) the same key: a row written with another key, or without one, fails verification.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, PlainValidator, ValidationError, ValidationInfo, create_model
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from notifications.addresses import AddressError, mail_address, mailbox
from notifications.settings import TLS_MODES, MailSettings
from states.errors import InvalidArgumentError
from workflow.tomlfile import StrictModel, load_toml, malformed, problem

#: Bounds of the seconds between two daemon passes, for the settings and `esms daemon --interval` alike.
SWEEP_INTERVAL_MIN = 0.1
SWEEP_INTERVAL_MAX = 86_400.0
#: No timeout or number of attempts comes near it: a value beyond is a typo (1e99), not a wish.
NUMBER_MAX = 1e9
#: The `config/` folder shipped beside the packages (an editable or source install).
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_PORTS = {"none": 25, "starttls": 587, "tls": 465}


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
    audit_key: str | None = field(default=None, repr=False)  # a secret: never printed nor logged
    warnings: tuple[str, ...] = ()  # what a front end should tell the operator (a secret in a file others can read)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from `environ` (default: the process environment) and the optional settings file.

    A malformed settings file is a `MalformedFileError`; a bad value, an `InvalidArgumentError` naming its variable.
    """
    env = os.environ if environ is None else environ
    settings_file = env.get("ESMS_SETTINGS_FILE")
    path = (
        Path(settings_file)
        if settings_file
        else Path(env.get("ESMS_CONFIG_DIR") or SHIPPED_CONFIG_DIR) / "settings.toml"
    )
    file_values = _read_settings_file(path) if settings_file or path.is_file() else {}
    # The environment wins over the file. The sources are called here rather than by `_Values()`, since
    # pydantic-settings chooses them per class, and the environment is a given mapping (a test, a child process).
    values = {**file_values, **_EnvironmentSource(_Values, env)()}
    try:
        read = _Values.model_validate(values)
    except ValidationError as error:
        raise InvalidArgumentError(str(error.errors(include_url=False)[0].get("ctx", {})["problem"])) from None

    config_dir = Path(read.config_dir or SHIPPED_CONFIG_DIR)
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", ".")) / ".local" / "share")
    data_dir = Path(read.data_dir or Path(xdg) / "esms")
    mail = MailSettings(
        smtp_host=read.smtp_host,
        smtp_port=read.smtp_port or DEFAULT_PORTS[read.smtp_tls],
        smtp_tls=read.smtp_tls,
        smtp_username=read.smtp_username,
        smtp_password=read.smtp_password,
        smtp_timeout=read.smtp_timeout,
        mail_from=read.mail_from,
        mail_dir=Path(read.mail_dir or data_dir / "mail"),
        admin_emails=tuple(a.strip() for a in (read.admin_emails or "").split(",") if a.strip()),
        max_attempts=read.mail_max_attempts,
    )
    return Settings(
        database_url=read.database_url or f"sqlite:///{data_dir / 'esms.sqlite3'}",
        config_dir=config_dir,
        data_dir=data_dir,
        timezone=ZoneInfo(read.timezone),
        mail=mail,
        sweep_interval=read.sweep_interval,
        digest_time=read.digest_time,
        audit_key=read.audit_key,
        warnings=_exposed_secrets(path, file_values),
    )


def _exposed_secrets(path: Path, file_values: Mapping[str, Any]) -> tuple[str, ...]:
    """Warn when the settings file holds a secret and its group or others may read it."""
    secrets = [key for key in ("smtp_password", "audit_key", "ds_token") if file_values.get(key)]
    if not secrets:
        return ()
    mode = path.stat().st_mode
    if not mode & 0o077:
        return ()
    return (
        f"{path} holds {', '.join(secrets)} and can be read by other users (mode {mode & 0o777:o}): "
        f"run chmod 600 {path}",
    )


# --- the values: each key of the file is the name of its variable without ESMS_ ----------------------------


def _variable(info: ValidationInfo) -> str:
    """The variable a value is named by in messages, wherever it came from."""
    return f"ESMS_{(info.field_name or '').upper()}"


def _zone_name(value: str, info: ValidationInfo) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise problem(f"{_variable(info)}: {value!r} is not a known time zone") from None
    return value


def _tls_mode(value: str, info: ValidationInfo) -> str:
    mode = value.lower()
    if mode not in TLS_MODES:
        raise problem(f"{_variable(info)}: {mode!r} is not one of {', '.join(TLS_MODES)}")
    return mode


def _number(value: str, info: ValidationInfo, minimum: float, maximum: float | None = None) -> float:
    try:
        number = float(value)
    except ValueError:
        raise problem(f"{_variable(info)}: {value!r} is not a number") from None
    if maximum is not None:
        if not minimum <= number <= maximum:
            raise problem(f"{_variable(info)}: {value} is not between {minimum:g} and {maximum:g} seconds")
    elif not minimum <= number < NUMBER_MAX:
        raise problem(f"{_variable(info)}: {value} is out of range (at least {minimum})")
    return number


def _time_of_day(value: str, info: ValidationInfo) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise problem(f"{_variable(info)}: {value!r} is not a time of day such as 08:00") from None


def _seconds(minimum: float, maximum: float | None = None) -> PlainValidator:
    return PlainValidator(lambda value, info: _number(value, info, minimum, maximum))


def _port(value: str, info: ValidationInfo) -> int:
    number = _number(value, info, 1)
    if not number.is_integer() or not 1 <= number <= 65_535:
        raise problem(f"{_variable(info)}: {value!r} is not a TCP port (1 to 65535)")
    return int(number)


def _host(value: str, info: ValidationInfo) -> str:
    host = value.strip()
    if not host or any(char.isspace() or not char.isprintable() for char in host):
        raise problem(f"{_variable(info)}: {value!r} is not a host name")
    return host


def _addresses(value: str, info: ValidationInfo) -> str:
    """Comma-separated addresses, each checked and normalised (what is stored is what mail is sent to)."""
    normalised = []
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            normalised.append(mail_address(part.strip()))
        except AddressError as error:
            raise problem(f"{_variable(info)}: {part.strip()!r} is not an e-mail address ({error})") from None
    return ",".join(normalised)


def _sender(value: str, info: ValidationInfo) -> str:
    try:
        return mailbox(value)
    except AddressError as error:
        raise problem(f"{_variable(info)}: {value!r} is not a sender such as Name <address> ({error})") from None


def _count() -> PlainValidator:
    return PlainValidator(lambda value, info: int(_number(value, info, 1)))


class _Values(BaseSettings):
    """The settings as given (strings, from the variables or the file), checked and typed in this order."""

    model_config = SettingsConfigDict(env_prefix="ESMS_", validate_default=False, frozen=True)

    database_url: str | None = None
    config_dir: str | None = None
    data_dir: str | None = None
    timezone: Annotated[str, PlainValidator(_zone_name)] = "Europe/Paris"
    smtp_host: Annotated[str | None, PlainValidator(_host)] = None
    smtp_tls: Annotated[str, PlainValidator(_tls_mode)] = "none"
    smtp_port: Annotated[int | None, PlainValidator(_port)] = None  # then by TLS mode: DEFAULT_PORTS
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)  # a secret: kept out of repr, logs and messages
    smtp_timeout: Annotated[float, _seconds(0.1)] = 30.0
    mail_from: Annotated[str, PlainValidator(_sender)] = "ESMS numérique <esms-numerique@esms-numerique.invalid>"
    mail_dir: str | None = None
    admin_emails: Annotated[str | None, PlainValidator(_addresses)] = None  # comma-separated
    mail_max_attempts: Annotated[int, _count()] = 48
    sweep_interval: Annotated[float, _seconds(SWEEP_INTERVAL_MIN, SWEEP_INTERVAL_MAX)] = 60.0
    digest_time: Annotated[time, PlainValidator(_time_of_day)] = time(8, 0)
    audit_key: str | None = Field(default=None, repr=False)  # a secret: kept out of repr, logs and messages


#: The keys a settings file may hold.
FILE_KEYS = tuple(_Values.model_fields)


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' reading of the `ESMS_*` variables, from a given mapping rather than `os.environ`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # The hook pydantic-settings' own .env source overrides. Names are matched as written: ESMS_TIMEZONE, not
        # esms_timezone (pydantic-settings compares them lower-cased).
        return {name.lower(): value for name, value in self._environ.items() if name.startswith("ESMS_") and value}


def _file_value(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise problem("must be a string or a number")
    return str(value)


_FILE_FIELDS: dict[str, Any] = {key: (Annotated[str | None, PlainValidator(_file_value)], None) for key in FILE_KEYS}
#: The settings file's schema: each key of `FILE_KEYS`, optional, a string or a number.
_SettingsFile = create_model("_SettingsFile", __base__=StrictModel, **_FILE_FIELDS)


def _read_settings_file(path: Path) -> dict[str, Any]:
    try:
        file = _SettingsFile.model_validate(load_toml(path))
    except ValidationError as error:
        raise malformed(path, error) from None
    return {key: value for key, value in file.model_dump().items() if value}
