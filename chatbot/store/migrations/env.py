"""Alembic environment: upgrade on the connection the app hands over (start-up), or on DATABASE_URL (the CLI)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from chatbot.store.schema import metadata, normalize_url

config = context.config


def run() -> None:
    """Run the migrations inside the caller's transaction, or open one on DATABASE_URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = normalize_url(os.environ.get("DATABASE_URL") or "sqlite:///instance/chatbot.db")
    engine = create_engine(url)
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
