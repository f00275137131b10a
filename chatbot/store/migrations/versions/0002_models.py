"""Models per conversation and per reply: the model a conversation asks for, and the model that wrote a reply.

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
    """Add conversations.model and messages.model (both empty: the provider's default applies)."""
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("model", sa.String(100), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("model", sa.String(100), nullable=True))
