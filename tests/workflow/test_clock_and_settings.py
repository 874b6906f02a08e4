"""The injected clock, `--now` parsing and settings resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from states.errors import InvalidArgumentError, MalformedFileError
from workflow.clock import SimulatedClock, parse_instant
from workflow.settings import FILE_KEYS, SWEEP_INTERVAL_MAX, SWEEP_INTERVAL_MIN, load_settings

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-31T23:59:59+02:00", datetime(2021, 3, 31, 21, 59, 59, tzinfo=UTC)),
        ("2021-03-31T23:59:59Z", datetime(2021, 3, 31, 23, 59, 59, tzinfo=UTC)),
        ("2021-03-31T23:59:59", datetime(2021, 3, 31, 21, 59, 59, tzinfo=UTC)),  # Paris summer time
        ("2021-01-15T12:00", datetime(2021, 1, 15, 11, 0, tzinfo=UTC)),  # Paris winter time
        ("2021-03-31", datetime(2021, 3, 30, 22, 0, tzinfo=UTC)),  # start of that day in Paris
    ],
)
def test_now_is_read_in_utc_with_paris_as_the_default_zone(text: str, expected: datetime) -> None:
    assert parse_instant(text, PARIS) == expected


@pytest.mark.parametrize("text", ["31/03/2021", "2021-02-30", "tomorrow", "", "2021-03-31T25:00"])
def test_malformed_now_is_bad_input(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="--now"):
        parse_instant(text, PARIS)


def test_simulated_clock_refuses_naive_instants_and_keeps_real_wall_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        SimulatedClock(datetime(2021, 1, 1))  # noqa: DTZ001
    clock = SimulatedClock(datetime(2021, 1, 1, tzinfo=UTC))
    assert clock.now().year == 2021
    assert clock.wall().year >= 2026


def test_settings_come_from_the_environment_over_the_settings_file(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('database_url = "sqlite:////srv/esms/file.db"\ndata_dir = "/srv/esms"\n')
    env = {"ESMS_SETTINGS_FILE": str(settings_file), "HOME": str(tmp_path)}
    from_file = load_settings(env)
    assert from_file.database_url == "sqlite:////srv/esms/file.db"
    assert from_file.data_dir == Path("/srv/esms")
    overridden = load_settings({**env, "ESMS_DATABASE_URL": "postgresql://db/esms"})
    assert overridden.database_url == "postgresql://db/esms"


def test_default_database_is_a_sqlite_file_in_the_data_folder(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path}/.local/share/esms/esms.sqlite3"
    assert (settings.config_dir / "campaigns" / "hdf-2021.toml").is_file()


def test_unknown_key_in_settings_file_is_refused(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('databse_url = "x"\n')
    with pytest.raises(MalformedFileError, match="databse_url: unknown key"):
        load_settings({"ESMS_SETTINGS_FILE": str(settings_file)})


@pytest.mark.parametrize("interval", [str(SWEEP_INTERVAL_MIN), str(SWEEP_INTERVAL_MAX), "60"])
def test_sweep_interval_within_its_bounds_is_accepted(tmp_path: Path, interval: str) -> None:
    settings = load_settings({"HOME": str(tmp_path), "ESMS_SWEEP_INTERVAL": interval})
    assert settings.sweep_interval == float(interval)


@pytest.mark.parametrize("interval", ["0.05", "86400.5", "1e9", "nan"])
def test_sweep_interval_out_of_its_bounds_is_refused_naming_the_variable(tmp_path: Path, interval: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load_settings({"HOME": str(tmp_path), "ESMS_SWEEP_INTERVAL": interval})
    assert str(caught.value) == f"ESMS_SWEEP_INTERVAL: {interval} is not between 0.1 and 86400 seconds"


def test_bad_value_in_the_settings_file_is_named_by_its_variable(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('smtp_tls = "ssl"\n')
    with pytest.raises(InvalidArgumentError, match="ESMS_SMTP_TLS: 'ssl' is not one of none, starttls, tls"):
        load_settings({"ESMS_SETTINGS_FILE": str(settings_file), "HOME": str(tmp_path)})


def test_boolean_in_the_settings_file_is_refused(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("smtp_port = true\n")
    with pytest.raises(MalformedFileError, match="smtp_port: must be a string or a number"):
        load_settings({"ESMS_SETTINGS_FILE": str(settings_file)})


def test_empty_variable_leaves_the_settings_file_value(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('smtp_tls = "starttls"\nsmtp_timeout = 5\n')
    env = {"ESMS_SETTINGS_FILE": str(settings_file), "HOME": str(tmp_path), "ESMS_SMTP_TLS": ""}
    settings = load_settings(env)
    assert settings.mail.smtp_tls == "starttls"
    assert settings.mail.smtp_port == 587
    assert settings.mail.smtp_timeout == 5


def test_lower_case_variable_is_not_a_setting(tmp_path: Path) -> None:
    settings = load_settings({"HOME": str(tmp_path), "esms_database_url": "postgresql://db/esms"})
    assert settings.database_url.startswith("sqlite:///")


def test_every_settings_file_key_has_its_variable(tmp_path: Path) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("".join(f'{key} = "x"\n' for key in FILE_KEYS))
    # Each key is known (no "unknown key"); the first value that cannot be "x" names its variable.
    with pytest.raises(InvalidArgumentError, match="ESMS_TIMEZONE"):
        load_settings({"ESMS_SETTINGS_FILE": str(settings_file)})
