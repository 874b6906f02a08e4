"""Migrations: `esms init` creates the schema the models describe, idempotently, on both backends."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Cli


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from workflow.db import MIGRATIONS_DIR
    from workflow.migrations import HEAD_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [HEAD_REVISION]


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import workflow.models  # noqa: F401
    from workflow.db import make_engine, migrate

    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == []


def test_init_is_idempotent_and_commands_before_it_say_to_run_it(cli: Cli, tmp_path: Path) -> None:
    assert "à jour" in cli.ok("init").out
    fresh = Cli({**cli.env, "ESMS_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}"}, cli._capsys)
    result = fresh("project", "list")
    assert result.code == 2
    assert "run `esms init`" in result.err
