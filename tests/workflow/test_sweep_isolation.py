"""One bad project never stops the sweep (issue "Reliability", reproducer 1): its failure is caught, kept on its row
for the digest, reported by `esms tick --json` under `errors`, and the other projects lapse as usual."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import workflow.messages
from tests.conftest import Cli, write_project
from workflow.campaigns import load_campaigns
from workflow.clock import SimulatedClock
from workflow.db import make_engine
from workflow.engine import Workflow
from workflow.sweep import RETRY_AFTER, sweep

PARIS = ZoneInfo("Europe/Paris")


def test_one_project_whose_message_cannot_be_rendered_does_not_stop_the_others_from_lapsing(
    cli: Cli, tmp_path: Path, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [
        cli.ok("project", "add", str(write_project(tmp_path, name=f"Grappe {n}")), now="2021-02-20").out.strip()
        for n in range(3)
    ]
    broken = int(ids[1])
    real_render = workflow.messages.render

    def render(template: str, context: dict[str, object]) -> object:
        project = context.get("project")
        if isinstance(project, dict) and project.get("id") == broken:
            raise ValueError("template context broken for this project")
        return real_render(template, context)  # type: ignore[arg-type]

    monkeypatch.setattr(workflow.messages, "render", render)
    report = cli.ok("tick", "--json", now="2021-04-01T00:00:01+02:00").json()
    assert sorted(t["project"] for t in report["transitions"]) == sorted(int(i) for i in ids if int(i) != broken)
    assert report["errors"] == [{"project": broken, "error": "template context broken for this project"}]

    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    with engine.connect() as connection:
        state, error = connection.execute(
            sa.text("SELECT state, sweep_error FROM project WHERE id = :i"), {"i": broken}
        ).one()
    assert state == "application" and error == "template context broken for this project"
    # Tried again after RETRY_AFTER, not at every pass; once it works the error is cleared.
    monkeypatch.setattr(workflow.messages, "render", real_render)
    clock = SimulatedClock(datetime(2021, 4, 1, 0, 0, 2, tzinfo=PARIS))
    flow = Workflow(engine, load_campaigns(config_dir), clock)
    assert sweep(flow).due == 0
    clock.set(datetime(2021, 4, 1, 0, 0, 1, tzinfo=PARIS) + RETRY_AFTER)
    assert [t.project for t in sweep(flow).transitions] == [broken]
    with engine.connect() as connection:
        assert (
            connection.execute(sa.text("SELECT sweep_error FROM project WHERE id = :i"), {"i": broken}).scalar() is None
        )
    engine.dispose()
    cli.ok("check")


def test_an_error_without_text_is_reported_by_its_type(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = int(cli.ok("project", "add", str(write_project(tmp_path)), now="2021-02-20").out)

    def render(template: str, context: dict[str, object]) -> object:
        raise KeyError()

    monkeypatch.setattr(workflow.messages, "render", render)
    report = cli.ok("tick", "--json", now=str(datetime(2021, 4, 1, tzinfo=PARIS) + timedelta(seconds=1))).json()
    assert report["errors"] == [{"project": project, "error": "KeyError"}]


def test_the_digest_names_the_projects_the_sweep_could_not_handle(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = int(cli.ok("project", "add", str(write_project(tmp_path, name="Grappe en panne")), now="2021-02-20").out)

    def render(template: str, context: dict[str, object]) -> object:
        raise ValueError("rendu impossible")

    monkeypatch.setattr(workflow.messages, "render", render)
    cli.ok("tick", now="2021-04-01T00:00:01+02:00")
    monkeypatch.undo()
    cli.env["ESMS_ADMIN_EMAILS"] = "equipe@ars.example"
    cli.ok("digest", now="2021-04-01T08:00:00+02:00")
    digests = [m for m in cli.ok("outbox", "list", "--json").json() if m["template"] == "digest"]
    engine = make_engine(cli.env["ESMS_DATABASE_URL"])
    with engine.connect() as connection:
        body = connection.execute(
            sa.text("SELECT body_text FROM outbox_message WHERE id = :i"), {"i": digests[0]["id"]}
        ).scalar()
    engine.dispose()
    assert f"n° {project} Grappe en panne (hdf-2021) : rendu impossible" in str(body)
