"""Alembic migrations of the engine's schema; `esms init` applies them."""

#: The newest revision; kept here so that checking the schema does not load Alembic (a test keeps it right).
HEAD_REVISION = "0007_reply_to"
