"""The reproducers of issue "Reliability and data protection", points 5 (crashes and confusions) and 6 (files open
to all), each named after it: one line, the right exit code, nothing written, nothing created."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli, snapshot, write_project


def cli_at(cli: Cli, tmp_path: Path) -> str:
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    cli.ok("fire", project, "select", "group=A", now="2021-04-20")
    return project


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and "Traceback" not in text


def test_a_300_character_reference_is_bad_input_on_both_databases(cli: Cli, tmp_path: Path, database_url: str) -> None:
    project = cli_at(cli, tmp_path)
    before = snapshot(database_url)
    refused = cli("fire", project, "file_needs", "reference=" + "R" * 300, now="2021-04-21")
    assert refused.code == 2 and one_line(refused.err) and "longer than 200 characters" in refused.err
    assert snapshot(database_url) == before
    cli.ok("fire", project, "file_needs", "reference=" + "R" * 200, now="2021-04-21")


@pytest.mark.parametrize("value", ["٨٦", "1e999999", "850", "-1"])
def test_verify_usage_refuses_values_that_are_not_measurements(
    cli: Cli, tmp_path: Path, database_url: str, value: str
) -> None:
    project = cli_at(cli, tmp_path)
    cli.ok("force", project, "usage_evaluation", "--reason", "mise en place", now="2021-05-01")
    before = snapshot(database_url)
    refused = cli("fire", project, "verify_usage", f"dui_actifs={value}", "ins_qualifiees=60", now="2021-05-02")
    assert refused.code == 2 and one_line(refused.err)
    assert snapshot(database_url) == before


@pytest.mark.parametrize("char", ["\x7f", "\x9b", "\u202e", "\u2028", "\u200b"])
def test_event_parameters_refuse_del_csi_rtl_override_line_separator_and_zero_width(
    cli: Cli, tmp_path: Path, database_url: str, char: str
) -> None:
    project = cli_at(cli, tmp_path)
    before = snapshot(database_url)
    refused = cli("fire", project, "file_needs", f"reference=RESAH{char}42", now="2021-04-21")
    assert refused.code == 2 and one_line(refused.err)
    assert snapshot(database_url) == before


def test_project_add_of_dev_zero_is_refused_before_reading(cli: Cli) -> None:
    refused = cli("project", "add", "/dev/zero")
    assert refused.code == 2 and "not a regular file" in refused.err and one_line(refused.err)


def test_project_add_of_a_fifo_is_refused_instead_of_hanging(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "project.toml"
    os.mkfifo(fifo)
    refused = cli("project", "add", str(fifo))
    assert refused.code == 2 and "not a regular file" in refused.err


def test_an_envelope_of_1e999999999_is_bad_input(cli: Cli, config_dir: Path) -> None:
    path = config_dir / "campaigns" / "hdf-2021.toml"
    path.write_text(path.read_text(encoding="utf-8").replace("envelope = 2000000 ", 'envelope = "1e999999999" '))
    refused = cli("campaign", "list")
    assert refused.code == 2 and "envelope" in refused.err and "out of range" in refused.err


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://u:secret@127.0.0.1:notaport/test", "is not a valid database URL"),
        ("u:secret@127.0.0.1/test", "is not a database URL"),
        ("sqlite:////etc/passwd/esms.sqlite3", "run `esms init`"),
    ],
)
def test_a_bad_database_url_is_one_line_that_never_shows_the_password(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, url: str, words: str
) -> None:
    cli.env["ESMS_DATABASE_URL"] = url
    refused = cli("project", "list")
    assert refused.code == 2 and words in refused.err and "secret" not in refused.err and one_line(refused.err)


def test_init_of_a_database_under_a_regular_file_is_bad_input(cli: Cli, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cli.env["ESMS_DATABASE_URL"] = f"sqlite:///{blocker}/esms.sqlite3"
    refused = cli("init")
    assert refused.code == 2 and "cannot create" in refused.err
    cli.env["ESMS_DATABASE_URL"] = "sqlite:////etc/passwd/esms.sqlite3"
    assert cli("init").code == 2


def test_a_read_only_command_on_a_fresh_machine_creates_no_file_or_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESMS_")}
    env.update(HOME=str(home), ESMS_CONFIG_DIR=str(Path(__file__).parents[2] / "config"))
    env.pop("XDG_DATA_HOME", None)
    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli.main", "project", "list"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "run `esms init`" in done.stderr
    assert not home.exists()


def test_the_database_and_its_folders_are_private_whatever_the_umask(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "new" / "data" / "esms.sqlite3"
    cli.env["ESMS_DATABASE_URL"] = f"sqlite:///{target}"
    previous = os.umask(0)
    try:
        cli.ok("init")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_a_settings_file_holding_the_password_and_readable_by_others_gets_a_warning(cli: Cli, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('smtp_host = "127.0.0.1"\nsmtp_password = "s3cret"\n', encoding="utf-8")
    settings.chmod(0o644)
    cli.env["ESMS_SETTINGS_FILE"] = str(settings)
    shown = cli.ok("campaign", "list")
    assert "can be read by other users" in shown.err and "chmod 600" in shown.err and "s3cret" not in shown.err
    settings.chmod(0o600)
    assert "other users" not in cli.ok("campaign", "list").err


def test_config_settings_toml_is_git_ignored() -> None:
    ignored = (Path(__file__).parents[2] / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "/config/settings.toml" in ignored


def test_the_mail_folder_is_private_whatever_the_umask(cli: Cli, tmp_path: Path) -> None:
    mail = tmp_path / "new" / "mail"
    cli.env["ESMS_MAIL_DIR"] = str(mail)
    project = cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out.strip()
    cli.ok("fire", project, "submit", now="2021-03-01")
    previous = os.umask(0)
    try:
        cli.ok("outbox", "send", now="2021-03-01T00:01")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(mail.stat().st_mode) == 0o700 and stat.S_IMODE(mail.parent.stat().st_mode) == 0o700
    [eml] = list(mail.glob("*.eml"))
    assert stat.S_IMODE(eml.stat().st_mode) == 0o600
