"""The README's "Everyday use" block works as written on a fresh install, today (issue "The programme team's desk")."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.conftest import REPO, Cli


def everyday_commands() -> list[list[str]]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Everyday use\n.*?```sh\n(.*?)```", readme, re.S)
    assert block is not None, "the README has an 'Everyday use' block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words:
            assert words[0] == "esms", line
            commands.append(words[1:])
    return commands


def test_the_readme_everyday_block_runs_as_written(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)  # the block names files relative to the repository, as a user who cloned it would
    outputs = [cli.ok(*command).out for command in everyday_commands()]
    assert outputs[2].strip() == "1"
    shown = cli.ok("project", "show", "1", "--json").json()
    assert shown["state"] == "completed" and shown["released_eur"] == shown["total_eur"] == "580000.00"
    assert outputs[-1].startswith("\ufeffN°;Projet;Campagne")
