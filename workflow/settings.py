"""Settings: from the environment, over an optional settings TOML, over defaults.

| environment            | settings file key | default                                              |
|------------------------|-------------------|------------------------------------------------------|
| ESMS_DATABASE_URL      | database_url      | sqlite:///<data dir>/esms.sqlite3                    |
| ESMS_CONFIG_DIR        | config_dir        | the project's `config/` folder                       |
| ESMS_DATA_DIR          | data_dir          | $XDG_DATA_HOME/esms (~/.local/share/esms)            |
| ESMS_TIMEZONE          | timezone          | Europe/Paris (for `--now` values given without offset) |
| ESMS_SETTINGS_FILE     | —                 | <config dir>/settings.toml, when it exists           |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workflow.errors import InvalidArgumentError
from workflow.tomlfile import Section, load_toml

#: The `config/` folder shipped beside the packages (an editable or source install).
SHIPPED_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the database, the campaign files and the data folder are."""

    database_url: str
    config_dir: Path
    data_dir: Path
    timezone: ZoneInfo


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
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(f"ESMS_TIMEZONE: {zone_name!r} is not a known time zone") from None
    return Settings(database_url=database_url, config_dir=config_dir, data_dir=data_dir, timezone=zone)


def _read_settings_file(path: Path) -> dict[str, str]:
    section = Section(str(path), load_toml(path))
    values = {}
    for key in ("database_url", "config_dir", "data_dir", "timezone"):
        value = section.text(key, required=False, max_length=2000)
        if value is not None:
            values[key] = value
    section.finish()
    return values
