"""Models and speed: the model a conversation asks for, and the model that wrote a reply and how fast.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add conversations.model, messages.model (empty: the provider's default applies) and messages.speed."""
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("model", sa.String(100), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("model", sa.String(100), nullable=True))
        batch.add_column(sa.Column("speed", sa.JSON(none_as_null=True), nullable=True))
